package commitlog

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Truncate drops every byte at or after pos, which must be a record
// boundary (or a segment base) between MinPos and WrittenPos: later
// segments are deleted and the segment holding pos is cut and becomes the
// one written next. It is used when a replica's log diverged from its
// leader's. The cut is fsynced before Truncate returns, so the dropped
// records cannot resurface after a crash.
//
// Readers of dropped positions get ErrOutOfRange; positions are reused by
// the next appends, so callers must drop their own references (indexes,
// consume queues) above pos first.
func (l *Log) Truncate(pos int64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	written := l.written.Load()
	if pos == written {
		return nil
	}
	if err := l.checkRange(pos, 0); err != nil {
		return err
	}
	if err := l.checkBoundary(pos); err != nil {
		return err
	}
	if err := l.truncateLocked(pos); err != nil {
		return l.fail(fmt.Errorf("truncate: %w", err))
	}
	l.notify(true)
	return nil
}

// checkBoundary rejects a pos that does not start a valid frame: a caller
// passing a position inside a record would otherwise corrupt the log.
func (l *Log) checkBoundary(pos int64) error {
	seg, end, err := l.acquireAt(pos)
	if err != nil {
		return err
	}
	defer seg.release()
	r := newSegReader(seg.f, seg.base, end)
	defer r.close()
	if _, _, err := r.frameAt(pos); err != nil {
		return fmt.Errorf("%w: truncation point %d is not a record boundary: %w", ErrOutOfRange, pos, err)
	}
	return nil
}

// truncateLocked does the cut; l.mu and l.flushMu are held.
func (l *Log) truncateLocked(pos int64) error {
	l.segMu.Lock()
	i := segmentIndex(l.segs, pos)
	keep, dropped := l.segs[i], slices.Clone(l.segs[i+1:])
	l.segs = slices.Clip(l.segs[:i+1])
	l.segMu.Unlock()

	l.active, keep.sealed = keep, false
	l.written.Store(pos)
	l.durable.Store(min(l.durable.Load(), pos))
	if err := keep.f.Truncate(pos - keep.base); err != nil {
		return err
	}
	if err := keep.f.Sync(); err != nil {
		return err
	}
	if err := l.dropSegments(dropped); err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.opts.Dir); err != nil {
		return err
	}
	// Bytes below pos in earlier segments may still await their fsync.
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return nil
}

// Retain deletes whole segments from the oldest on: those whose newest
// record is older than maxAge at now (0: no age limit), and more while the
// log holds more than maxBytes (0: no size limit). The segment being
// written is never deleted. MinPos moves to the base of the oldest segment
// left; readers still inside a deleted segment finish their read.
func (l *Log) Retain(maxAge time.Duration, maxBytes int64, now time.Time) (deleted int, err error) {
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	victims := l.retainVictims(maxAge, maxBytes, now)
	if len(victims) > 0 {
		l.segMu.Lock()
		l.segs = slices.Clone(l.segs[len(victims):])
		l.minPos.Store(l.segs[0].base)
		l.segMu.Unlock()
	}
	l.mu.Unlock()
	if len(victims) == 0 {
		return 0, nil
	}
	// Unlinking a large file can take a while; the append lock is not held.
	err = l.dropSegments(victims)
	if serr := l.fs.SyncDir(l.opts.Dir); serr != nil {
		err = errors.Join(err, fmt.Errorf("commitlog: sync dir: %w", serr))
	}
	l.notify(false)
	return len(victims), err
}

// retainVictims lists the oldest segments to delete; l.mu is held.
func (l *Log) retainVictims(maxAge time.Duration, maxBytes int64, now time.Time) []*segment {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	total := l.written.Load() - l.segs[0].base
	cutoff := now.Add(-maxAge).UnixNano()
	var victims []*segment
	for i := 0; i+1 < len(l.segs); i++ { // never the last, active segment
		s := l.segs[i]
		expired := maxAge > 0 && s.newest < cutoff
		oversize := maxBytes > 0 && total > maxBytes
		if !expired && !oversize {
			break
		}
		victims = append(victims, s)
		total -= l.segs[i+1].base - s.base
	}
	return victims
}
