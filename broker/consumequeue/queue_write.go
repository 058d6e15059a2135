package consumequeue

import (
	"errors"
	"fmt"
)

// Append writes e at offset, which must equal MaxOffset. The entry becomes
// visible to readers when Append returns, and durable after the next Flush.
func (q *Queue) Append(offset int64, e Entry) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if max := q.max.Load(); offset != max {
		return fmt.Errorf("%w: append at %d, next offset is %d", ErrOffsetMismatch, offset, max)
	}
	if !e.valid(q.lastPos) {
		return fmt.Errorf("%w: pos %d size %d after pos %d", ErrInvalidEntry, e.Pos, e.Size, q.lastPos)
	}
	s, err := q.segmentForAppend(offset)
	if err != nil {
		return err
	}
	encodeEntry(s.slot(offset), e)
	q.lastPos = e.Pos
	// Publishing after the write is what makes the entry safe to read.
	q.max.Store(offset + 1)
	return nil
}

// segmentForAppend returns the segment that holds offset (== MaxOffset),
// creating the next file when the last one is full. Caller holds wmu.
func (q *Queue) segmentForAppend(offset int64) (*segment, error) {
	if n := len(q.segs); n > 0 && offset < q.segs[n-1].base+q.perFile {
		return q.segs[n-1], nil
	}
	// With no file yet the queue starts at MaxOffset, which is 0 unless a
	// truncation below the first file moved it.
	s, err := createSegment(q.dir, offset, q.fileSize)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.segs = append(q.segs, s)
	q.mu.Unlock()
	return s, nil
}

// Flush makes every entry appended so far durable (msync), including the
// effect of truncations. It may run concurrently with Append and readers.
func (q *Queue) Flush() error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	to := q.max.Load()
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	var errs []error
	for _, s := range q.segs {
		from, end := max(q.dirtyFrom, s.base), min(to, s.base+q.perFile)
		errs = append(errs, s.sync(from, end))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	q.dirtyFrom = to
	return nil
}
