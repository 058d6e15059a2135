package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// tailScan is what checking one segment's records found.
type tailScan struct {
	end    int64 // position after the last valid frame
	sealed bool  // the last valid frame is an end-of-segment marker
	newest int64 // newest store time seen
	bad    error // why the scan stopped before the end of the file, if it did
}

// recover rebuilds the log's state from Dir. Segments before the recovery
// start are trusted (only their sizes and end markers are looked at); from
// there on every frame is checked, and the log ends at the first frame that
// is torn or corrupt, or at a segment that does not continue its
// predecessor. Everything past that point is cut.
func (l *Log) recover() error {
	segs, sizes, err := l.loadSegments()
	l.segs = segs // whatever happens, Open's cleanup closes them
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		return l.initEmpty()
	}
	k, from := l.recoveryStart(segs, sizes)
	if err := l.checkTrusted(segs[:k+1], sizes); err != nil {
		return err
	}
	keep, res, err := l.scanTail(segs, sizes, k, from)
	if err != nil {
		return err
	}
	return l.cutTail(segs, sizes, k, keep, res)
}

// loadSegments opens every segment file in Dir, in position order, and
// returns their sizes. Files with other names are left alone.
func (l *Log) loadSegments() ([]*segment, []int64, error) {
	ents, err := l.fs.ReadDir(l.opts.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("commitlog: list %s: %w", l.opts.Dir, err)
	}
	var segs []*segment
	var sizes []int64
	for _, e := range ents { // ReadDir sorts by name, which is position order
		base, ok := parseSegmentName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(l.opts.Dir, e.Name())
		f, err := l.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return segs, nil, fmt.Errorf("commitlog: open segment: %w", err)
		}
		segs = append(segs, newSegment(base, path, f))
		fi, err := f.Stat()
		if err != nil {
			return segs, nil, fmt.Errorf("commitlog: stat segment: %w", err)
		}
		sizes = append(sizes, fi.Size())
	}
	return segs, sizes, nil
}

func (l *Log) initEmpty() error {
	s, err := l.createSegment(0)
	if err != nil {
		return err
	}
	l.segs, l.active = []*segment{s}, s
	if err := l.fs.SyncDir(l.opts.Dir); err != nil {
		return fmt.Errorf("commitlog: sync dir: %w", err)
	}
	return nil
}

// recoveryStart picks the segment k and position from which to check
// records: max(RecoverFrom, oldest base), but no later than the base of the
// last segment, so the last segment is always checked whole.
func (l *Log) recoveryStart(segs []*segment, sizes []int64) (int, int64) {
	last := len(segs) - 1
	from := max(l.opts.RecoverFrom, segs[0].base)
	if from >= segs[last].base {
		return last, segs[last].base
	}
	k := segmentIndex(segs, from)
	if from >= segs[k].base+sizes[k] {
		l.logger.Warn("recovery checkpoint beyond the data of its segment; rechecking the segment",
			"recover_from", from, "segment", segs[k].base, "size", sizes[k])
		from = segs[k].base
	}
	return k, from
}

// checkTrusted verifies that the trusted segments before the recovery
// start tile the position space without gaps — a gap there means durable
// data is missing, which recovery must not paper over — and reads the end
// markers that date them for age retention.
func (l *Log) checkTrusted(segs []*segment, sizes []int64) error {
	for i := 0; i+1 < len(segs); i++ {
		s := segs[i]
		if s.base+sizes[i] != segs[i+1].base {
			return fmt.Errorf("%w: segment %d holds %d bytes but the next one starts at %d",
				ErrCorruption, s.base, sizes[i], segs[i+1].base)
		}
		s.sealed, s.newest = true, l.readMarkerTime(s, sizes[i])
	}
	return nil
}

// readMarkerTime returns the newest store time recorded in the end marker
// of a sealed segment, or its file's modification time if the marker is
// unreadable.
func (l *Log) readMarkerTime(s *segment, size int64) int64 {
	r := newSegReader(s.f, s.base, s.base+size)
	defer r.close()
	b, f, err := r.frameAt(s.base + size - markerSize)
	if err == nil && f.kind == frameMarker {
		return markerTime(b)
	}
	l.logger.Warn("sealed segment has no valid end marker; dating it by its file", "segment", s.base, "err", err)
	if fi, err := s.f.Stat(); err == nil {
		return fi.ModTime().UnixNano()
	}
	return 0
}

// scanTail checks frames from position from in segment k onwards and
// returns the index of the last segment to keep with its scan result.
func (l *Log) scanTail(segs []*segment, sizes []int64, k int, from int64) (int, tailScan, error) {
	for i := k; ; i++ {
		res, err := l.scanSegment(segs[i], sizes[i], from)
		if err != nil {
			return 0, res, err
		}
		if i == k && from > segs[i].base && res.end == from && res.bad != nil {
			// No valid frame at the checkpoint: it was not a record boundary.
			// Recheck the whole segment rather than cut acknowledged data.
			l.logger.Warn("recovery checkpoint is not on a record boundary; rechecking its segment",
				"recover_from", from, "segment", segs[i].base, "err", res.bad)
			from = segs[i].base
			i--
			continue
		}
		segs[i].sealed, segs[i].newest = res.sealed, res.newest
		if !res.sealed || i == len(segs)-1 || segs[i+1].base != res.end {
			return i, res, nil
		}
		from = segs[i+1].base
	}
}

// scanSegment checks frames from position from to the end of the file or
// the first bad frame. Only read errors are returned as errors: bad bytes
// are what recovery is for, and end up in tailScan.bad.
func (l *Log) scanSegment(s *segment, size, from int64) (tailScan, error) {
	r := newSegReader(s.f, s.base, s.base+size)
	defer r.close()
	res := tailScan{end: from}
	for res.end < r.end {
		b, f, err := r.frameAt(res.end)
		if err != nil {
			if !errors.Is(err, ErrCorruption) && !errors.Is(err, errOverrun) {
				return res, err
			}
			res.bad = err
			return res, nil
		}
		res.end += int64(f.n)
		if f.kind == frameMarker {
			res.sealed, res.newest = true, max(res.newest, markerTime(b))
			return res, nil
		}
		res.newest = max(res.newest, recordStoreTime(b))
	}
	return res, nil
}

// cutTail makes the files match the recovered log: it truncates the last
// kept segment after its last valid frame, deletes the segments after it,
// starts a new segment if the last kept one is sealed, and fsyncs what was
// checked so that DurablePos can start at WrittenPos.
func (l *Log) cutTail(segs []*segment, sizes []int64, k, keep int, res tailScan) error {
	last := segs[keep]
	dropped := res.end < last.base+sizes[keep]
	if dropped {
		l.logger.Warn("truncating torn or corrupt tail", "segment", last.base, "at", res.end,
			"bytes", last.base+sizes[keep]-res.end, "reason", res.bad)
		if err := last.f.Truncate(res.end - last.base); err != nil {
			return fmt.Errorf("commitlog: truncate tail: %w", err)
		}
	}
	for i := keep + 1; i < len(segs); i++ {
		l.logger.Warn("deleting segment beyond the end of the log", "segment", segs[i].base, "bytes", sizes[i])
		dropped = dropped || sizes[i] > 0
	}
	if dropped {
		l.m.truncatedTails.Add(1)
	}
	l.segs, l.active = segs[:keep+1], last
	if err := l.dropSegments(segs[keep+1:]); err != nil {
		return err
	}
	l.written.Store(res.end)
	l.durable.Store(res.end)
	l.minPos.Store(segs[0].base)
	if last.sealed {
		if _, err := l.addSegment(res.end); err != nil {
			return err
		}
	}
	return l.syncRecovered(k, keep < len(segs)-1 || last.sealed)
}

// dropSegments deletes segment files and releases them.
func (l *Log) dropSegments(segs []*segment) error {
	var errs []error
	for _, s := range segs {
		if err := l.fs.Remove(s.path); err != nil {
			errs = append(errs, fmt.Errorf("commitlog: remove segment: %w", err))
		}
		errs = append(errs, s.release())
	}
	return errors.Join(errs...)
}

// syncRecovered fsyncs the checked segments (a crashed process may have
// left them in the page cache only) and the directory if it changed.
func (l *Log) syncRecovered(k int, dirChanged bool) error {
	for _, s := range l.segs[k:] {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("commitlog: sync recovered segment: %w", err)
		}
	}
	l.dirDirty = false
	if dirChanged {
		if err := l.fs.SyncDir(l.opts.Dir); err != nil {
			return fmt.Errorf("commitlog: sync dir: %w", err)
		}
	}
	return nil
}
