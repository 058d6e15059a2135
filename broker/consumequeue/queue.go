package consumequeue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Queue is the consume queue of one (topic, queue id). See the package
// documentation for the concurrency contract.
type Queue struct {
	dir      string
	perFile  int64 // slots per file
	fileSize int

	wmu     sync.Mutex   // serialises mutations
	flushMu sync.Mutex   // serialises Flush; guards dirtyFrom
	mu      sync.RWMutex // guards segs and closed; held shared while reading a mapping

	segs   []*segment // contiguous, ascending base
	closed bool

	min atomic.Int64
	max atomic.Int64

	lastPos   int64 // Pos of the entry at max-1, -1 if none; writer only
	dirtyFrom int64 // offsets below it are on disk; guarded by flushMu
}

// Open opens (creating if needed) the queue stored in dir, which belongs to
// this queue alone, and recovers MaxOffset from its last file.
func Open(dir string, opts Options) (*Queue, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("consumequeue: %w", err)
	}
	q := &Queue{dir: dir, perFile: int64(opts.EntriesPerFile), fileSize: opts.EntriesPerFile * EntrySize}
	if err := q.load(); err != nil {
		q.unmapAll()
		return nil, err
	}
	return q, nil
}

// load maps the queue's files and recovers the bounds.
func (q *Queue) load() error {
	bases, err := q.listSegments()
	if err != nil {
		return err
	}
	for i, base := range bases {
		if i > 0 && base != bases[i-1]+q.perFile {
			return fmt.Errorf("%w: %s: file %s does not follow %s", ErrCorruption, q.dir, segmentName(base), segmentName(bases[i-1]))
		}
		s, err := openSegment(filepath.Join(q.dir, segmentName(base)), base, q.fileSize)
		if err != nil {
			return err
		}
		q.segs = append(q.segs, s)
	}
	if err := q.recoverTail(); err != nil {
		return err
	}
	q.dirtyFrom = q.max.Load()
	return nil
}

// listSegments returns the base offsets of the queue's files in ascending
// order and deletes files left half-created by a crash.
func (q *Queue) listSegments() ([]int64, error) {
	des, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("consumequeue: %w", err)
	}
	var bases []int64
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			if err := os.Remove(filepath.Join(q.dir, name)); err != nil {
				return nil, fmt.Errorf("consumequeue: remove leftover: %w", err)
			}
			continue
		}
		if base, ok := parseSegmentName(name); ok && de.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// recoverTail sets the bounds from the files: MaxOffset is the first empty
// or invalid slot of the last file, or of the one before it when the last
// file is empty (a crash right after a rollover). Anything after that slot
// is a torn write and is zeroed; files after it are removed.
func (q *Queue) recoverTail() error {
	if len(q.segs) == 0 {
		q.lastPos = -1
		return nil
	}
	from := len(q.segs) - 1
	if from > 0 && !q.segs[from].entry(q.segs[from].base).valid(-1) {
		from--
	}
	prev := int64(-1)
	if from > 0 {
		prev = q.segs[from-1].entry(q.segs[from].base - 1).Pos
	}
	end, lastPos := q.scanValid(q.segs[from].base, prev)
	q.min.Store(q.segs[0].base)
	q.max.Store(end)
	q.lastPos = lastPos
	return q.cutAfter(end)
}

// scanValid walks from offset start to the end of the files and returns the
// first offset whose slot is not a valid successor of the one before, and
// the Pos of the last valid entry (prevPos if there is none).
func (q *Queue) scanValid(start, prevPos int64) (end, lastPos int64) {
	end, lastPos = start, prevPos
	for _, s := range q.segs {
		for ; end < s.base+q.perFile; end++ {
			e := s.entry(end)
			if !e.valid(lastPos) {
				return end, lastPos
			}
			lastPos = e.Pos
		}
	}
	return end, lastPos
}

// cutAfter zeroes every slot at or after end and drops the files that start
// after end. The file containing end is kept so that MaxOffset survives.
func (q *Queue) cutAfter(end int64) error {
	keep := len(q.segs)
	for keep > 1 && q.segs[keep-1].base > end {
		keep--
	}
	drop := slices.Clone(q.segs[keep:])
	q.segs = q.segs[:keep]
	last := q.segs[keep-1]
	if err := last.zeroTail(max(end, last.base)); err != nil {
		return err
	}
	return q.removeSegments(drop, true)
}

// removeSegments unmaps and deletes segs. The caller holds the exclusive
// lock or owns the queue exclusively. Highest first keeps a crash from
// leaving a gap when trimming the tail; lowest first does the same when
// trimming the head.
func (q *Queue) removeSegments(segs []*segment, highestFirst bool) error {
	if len(segs) == 0 {
		return nil
	}
	if highestFirst {
		segs = slices.Clone(segs)
		slices.Reverse(segs)
	}
	var errs []error
	for _, s := range segs {
		errs = append(errs, s.unmap())
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("consumequeue: %w", err))
		}
	}
	return errors.Join(errs...)
}

// MinOffset returns the first offset that may still be read.
func (q *Queue) MinOffset() int64 { return q.min.Load() }

// MaxOffset returns the offset the next Append must use: one past the last
// entry.
func (q *Queue) MaxOffset() int64 { return q.max.Load() }

// Get returns the entry at offset.
func (q *Queue) Get(offset int64) (Entry, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return Entry{}, ErrClosed
	}
	lo, hi := q.min.Load(), q.max.Load()
	if offset < lo || offset >= hi {
		return Entry{}, fmt.Errorf("%w: offset %d not in [%d, %d)", ErrOutOfRange, offset, lo, hi)
	}
	return q.readLocked(offset)
}

// Range appends to dst up to max entries (none if max <= 0) starting at offset from and
// returns the extended slice. from == MaxOffset yields no entries and no
// error (a consumer that is caught up); from outside [MinOffset, MaxOffset]
// is ErrOutOfRange. Pass buf[:0] to reuse a buffer.
func (q *Queue) Range(from int64, max int, dst []Entry) ([]Entry, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return dst, ErrClosed
	}
	lo, hi := q.min.Load(), q.max.Load()
	if from < lo || from > hi {
		return dst, fmt.Errorf("%w: offset %d not in [%d, %d]", ErrOutOfRange, from, lo, hi)
	}
	if max <= 0 {
		return dst, nil
	}
	end := hi
	if int64(max) < hi-from {
		end = from + int64(max)
	}
	for off := from; off < end; off++ {
		e, err := q.readLocked(off)
		if err != nil {
			return dst, err
		}
		dst = append(dst, e)
	}
	return dst, nil
}

// readLocked decodes the entry at offset, which the caller has checked to
// lie in [MinOffset, MaxOffset) while holding mu (shared) or wmu.
func (q *Queue) readLocked(offset int64) (Entry, error) {
	s := q.segs[(offset-q.segs[0].base)/q.perFile]
	e := s.entry(offset)
	if e.Size <= 0 || e.Pos < 0 {
		return Entry{}, fmt.Errorf("%w: %s: invalid entry at offset %d", ErrCorruption, s.path, offset)
	}
	return e, nil
}

// Search returns the smallest offset in [MinOffset, MaxOffset) whose entry
// satisfies pred, or MaxOffset if none does. pred must be monotone over the
// queue: false for a prefix, true after it. pred runs without any lock held,
// so it may do I/O; an error from it ends the search. An offset that
// retention removes during the search counts as false, which keeps the
// result inside the current [MinOffset, MaxOffset).
func (q *Queue) Search(pred func(Entry) (bool, error)) (int64, error) {
	lo, hi := q.min.Load(), q.max.Load()
	for lo < hi {
		mid := lo + (hi-lo)/2
		ok, err := q.test(mid, pred)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

func (q *Queue) test(offset int64, pred func(Entry) (bool, error)) (bool, error) {
	e, err := q.Get(offset)
	if errors.Is(err, ErrOutOfRange) && offset < q.MinOffset() {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return pred(e)
}

// Close flushes the queue and releases its mappings. It is safe to call more
// than once; every other method returns ErrClosed afterwards.
func (q *Queue) Close() error {
	flushErr := q.Flush()
	if errors.Is(flushErr, ErrClosed) {
		return nil
	}
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	return errors.Join(flushErr, q.unmapAll())
}

func (q *Queue) unmapAll() error {
	var errs []error
	for _, s := range q.segs {
		errs = append(errs, s.unmap())
	}
	q.segs = nil
	return errors.Join(errs...)
}
