package consumequeue

import (
	"fmt"
	"slices"

	"github.com/duomq/duomq/internal/atomicfile"
)

// TruncateFromPos drops every entry whose Pos >= pos; MaxOffset moves back
// to the first such entry. Recovery uses it to cut the queue back to the
// commitlog position it re-dispatches from.
func (q *Queue) TruncateFromPos(pos int64) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if len(q.segs) == 0 {
		return nil
	}
	// Entries below MinOffset are still on disk and in Pos order, so the
	// search covers the whole of the first file.
	return q.truncateLocked(q.searchPos(q.segs[0].base, q.max.Load(), pos))
}

// TruncateTo drops every entry at or after offset. An offset at or beyond
// MaxOffset changes nothing; one below the first file empties the queue and
// restarts it at offset, as Reset does.
func (q *Queue) TruncateTo(offset int64) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if q.closed {
		return ErrClosed
	}
	return q.truncateLocked(offset)
}

func (q *Queue) truncateLocked(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: truncate to negative offset %d", ErrInvalidArgument, offset)
	}
	if offset >= q.max.Load() {
		return nil
	}
	if len(q.segs) == 0 || offset < q.segs[0].base {
		return q.resetLocked(offset)
	}
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	q.mu.Lock()
	oldMax := q.max.Load()
	q.max.Store(offset)
	if q.min.Load() > offset {
		q.min.Store(offset)
	}
	keep := len(q.segs)
	for keep > 1 && q.segs[keep-1].base > offset {
		keep--
	}
	drop := slices.Clone(q.segs[keep:])
	q.segs = q.segs[:keep]
	q.mu.Unlock()

	q.lastPos = q.posBefore(offset)
	q.dirtyFrom = min(q.dirtyFrom, offset)
	last := q.segs[keep-1]
	last.zero(offset, min(oldMax, last.base+q.perFile))
	// Truncation is rare and recovery depends on it, so it is made durable
	// now rather than at the next Flush.
	if err := last.sync(offset, min(oldMax, last.base+q.perFile)); err != nil {
		return err
	}
	if err := q.removeSegments(drop, true); err != nil {
		return err
	}
	return atomicfile.SyncDir(q.dir)
}

// posBefore returns the Pos of the entry just before offset, or -1 if that
// slot is not in the files. Caller holds wmu.
func (q *Queue) posBefore(offset int64) int64 {
	if len(q.segs) == 0 || offset <= q.segs[0].base {
		return -1
	}
	return q.segs[(offset-1-q.segs[0].base)/q.perFile].entry(offset - 1).Pos
}

// Reset empties the queue and restarts it at offset start, for a replica
// that begins following mid-stream. The empty file created for start
// records the start across restarts.
func (q *Queue) Reset(start int64) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if start < 0 {
		return fmt.Errorf("%w: reset to negative offset %d", ErrInvalidArgument, start)
	}
	return q.resetLocked(start)
}

func (q *Queue) resetLocked(start int64) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	q.mu.Lock()
	old := q.segs
	q.segs = nil
	q.min.Store(start)
	q.max.Store(start)
	q.mu.Unlock()
	q.lastPos = -1
	q.dirtyFrom = start
	// Lowest first: a crash part-way leaves a shorter but valid queue, which
	// the owner notices and resets again.
	if err := q.removeSegments(old, false); err != nil {
		return err
	}
	s, err := createSegment(q.dir, start, q.fileSize)
	if err != nil {
		return err
	}
	q.mu.Lock()
	q.segs = []*segment{s}
	q.mu.Unlock()
	return nil
}

// SetMinLogPos applies retention: entries whose Pos < pos refer to
// commitlog data that is gone. MinOffset moves to the first entry with
// Pos >= pos (or MaxOffset), and files holding only expired entries are
// deleted, except the last file, which keeps MaxOffset alive across a
// restart. MinOffset never moves back.
func (q *Queue) SetMinLogPos(pos int64) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	if q.closed {
		return ErrClosed
	}
	lo, hi := q.min.Load(), q.max.Load()
	newMin := q.searchPos(lo, hi, pos)
	if newMin == lo {
		return nil
	}
	q.mu.Lock()
	q.min.Store(newMin)
	n := 0
	for n < len(q.segs)-1 && q.segs[n].base+q.perFile <= newMin {
		n++
	}
	drop := slices.Clone(q.segs[:n])
	q.segs = slices.Delete(q.segs, 0, n)
	q.mu.Unlock()
	if err := q.removeSegments(drop, false); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return atomicfile.SyncDir(q.dir)
}

// searchPos returns the first offset in [lo, hi) whose entry has Pos >= pos,
// or hi. Caller holds wmu, so the mappings cannot change under it.
//
// An invalid slot (a hole a power loss left in unflushed data) counts as
// Pos >= pos. Damage only occurs after the last Flush, where every true Pos
// is at least the checkpoint recovery truncates from; so the search never
// stops inside the flushed prefix, and recovery cuts holes away instead of
// failing on them (see the package documentation for the rest).
func (q *Queue) searchPos(lo, hi, pos int64) int64 {
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := q.readLocked(mid)
		if err == nil && e.Pos < pos {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
