package commitlog

import (
	"fmt"
	"time"
)

// Coalescing: records are copied into one buffer and written with one
// pwrite per segment touched, because a syscall per 1 KiB record would cost
// more than the copy. Large records skip the copy.
const (
	coalesceLimit  = 1 << 20  // write the buffer out when it would grow past this
	directWriteMin = 64 << 10 // records at least this long are written in place
)

// Append writes a batch of framed records (each produced by AppendRecord)
// at the end of the log and returns where each one went. It writes into
// the OS (pwrite) without fsyncing: in sync mode the caller then waits with
// WaitDurable, which is what makes group commit possible. The batch is
// checked before anything is written; a batch may roll to new segments in
// the middle. The records become visible to readers all at once, when the
// whole batch is written.
//
// A write error fails the log (ErrLogFailed): the bytes past WrittenPos are
// then in an unknown state, and only reopening (recovery) sorts them out.
func (l *Log) Append(records [][]byte) (AppendResult, error) {
	total, err := l.checkBatch(records)
	if err != nil {
		return AppendResult{}, err
	}
	if len(records) == 0 {
		return AppendResult{End: l.written.Load()}, l.usable()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usable(); err != nil {
		return AppendResult{}, err
	}
	res := AppendResult{Positions: make([]int64, len(records)), Sizes: make([]int32, len(records))}
	w := batchWriter{l: l, seg: l.active, pos: l.written.Load(), buf: l.wbuf[:0]}
	w.start = w.pos
	for i, rec := range records {
		if err := w.add(rec); err != nil {
			return AppendResult{}, l.fail(err)
		}
		res.Positions[i], res.Sizes[i] = w.pos-int64(len(rec)), int32(len(rec))
	}
	if err := w.flush(); err != nil {
		return AppendResult{}, l.fail(err)
	}
	if cap(w.buf) <= 2*coalesceLimit {
		l.wbuf = w.buf
	}
	if hook := l.opts.Hooks.AfterWrite; hook != nil {
		if err := hook(); err != nil {
			return AppendResult{}, l.fail(fmt.Errorf("after write: %w", err))
		}
	}
	l.publish(w.pos, len(records), total)
	res.End = w.pos
	return res, nil
}

// checkBatch validates every record before the lock is taken, so that a bad
// one rejects the whole batch with nothing written. The checksum is not
// verified here (readers verify it); the framing is.
func (l *Log) checkBatch(records [][]byte) (int, error) {
	total := 0
	for i, rec := range records {
		switch {
		case len(rec) > l.maxRec:
			return 0, fmt.Errorf("%w: record %d is %d bytes, limit %d", ErrRecordTooLarge, i, len(rec), l.maxRec)
		case len(rec) < MinRecordSize:
			return 0, fmt.Errorf("%w: record %d is %d bytes, shorter than any record", ErrBadRecord, i, len(rec))
		case int(le.Uint32(rec)) != len(rec):
			return 0, fmt.Errorf("%w: record %d declares %d bytes but is %d", ErrBadRecord, i, le.Uint32(rec), len(rec))
		case rec[8] != FormatVersion:
			return 0, fmt.Errorf("%w: record %d has version %d", ErrBadRecord, i, rec[8])
		}
		total += len(rec)
	}
	return total, nil
}

// publish makes the batch ending at end visible and tells the flusher.
func (l *Log) publish(end int64, n, bytes int) {
	l.written.Store(end)
	l.m.appends.Add(uint64(n))
	l.m.appendedBytes.Add(uint64(bytes))
	l.notify(false)
	if l.opts.FlushMode == FlushSync {
		select {
		case l.kick <- struct{}{}:
		default: // a round is already pending; it will cover these bytes
		}
	}
}

// batchWriter lays out one Append: it coalesces records into buf (which
// starts at logical position start) and rolls segments as they fill.
type batchWriter struct {
	l     *Log
	seg   *segment
	pos   int64 // where the next record goes
	start int64 // logical position of buf[0]
	buf   []byte
}

func (w *batchWriter) add(rec []byte) error {
	if !w.fits(len(rec)) {
		if err := w.roll(); err != nil {
			return err
		}
	}
	w.seg.newest = max(w.seg.newest, recordStoreTime(rec))
	if len(rec) >= directWriteMin {
		if err := w.flush(); err != nil {
			return err
		}
		w.pos += int64(len(rec))
		w.start = w.pos
		return w.writeAt(rec, w.pos-int64(len(rec)))
	}
	if len(w.buf)+len(rec) > coalesceLimit {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, rec...)
	w.pos += int64(len(rec))
	return nil
}

// fits reports whether a record of n bytes still fits in the segment
// together with the end marker that must follow it. An empty segment takes
// any record Append accepted (checkBatch bounds them by the segment size).
func (w *batchWriter) fits(n int) bool {
	used := w.pos - w.seg.base
	return used == 0 || used+int64(n)+markerSize <= w.l.opts.SegmentSize
}

// flush writes the coalesced bytes out.
func (w *batchWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.writeAt(w.buf, w.start)
	w.buf = w.buf[:0]
	w.start = w.pos
	return err
}

func (w *batchWriter) writeAt(b []byte, pos int64) error {
	if _, err := w.seg.f.WriteAt(b, pos-w.seg.base); err != nil {
		return fmt.Errorf("write %s: %w", w.seg.path, err)
	}
	return nil
}

// roll closes the current segment with an end marker and continues in a
// new segment that starts right after it.
func (w *batchWriter) roll() error {
	if err := w.flush(); err != nil {
		return err
	}
	if w.seg.newest == 0 {
		// Records without store times: date the segment by its closing, so
		// that age retention still has something to go by.
		w.seg.newest = time.Now().UnixNano()
	}
	marker := appendMarker(w.buf[:0], w.seg.newest)
	if err := w.writeAt(marker, w.pos); err != nil {
		return err
	}
	w.seg.sealed = true
	w.pos += markerSize
	w.start = w.pos
	next, err := w.l.addSegment(w.pos)
	if err != nil {
		return err
	}
	w.seg = next
	return nil
}

// addSegment creates the segment starting at base and makes it the active
// one. Its directory entry is made durable by the next fsync round.
func (l *Log) addSegment(base int64) (*segment, error) {
	s, err := l.createSegment(base)
	if err != nil {
		return nil, err
	}
	l.segMu.Lock()
	l.segs = append(l.segs, s)
	l.segMu.Unlock()
	l.active = s
	l.dirDirty = true
	return s, nil
}
