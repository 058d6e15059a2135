package commitlog

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/duomq/duomq/internal/vfs"
)

// scanChunk is how much a sequential reader reads at once: large enough to
// amortize the syscall over many records, small enough that scanning never
// holds a segment's worth of data in the heap.
const scanChunk = 1 << 20

// minReadahead is the least a read fetches, enough for a typical record
// and the header of the next.
const minReadahead = 4 << 10

// readPool holds ReadMessage's raw buffers. One that grew for a huge
// record keeps its size; the pool lets the GC reclaim it when idle.
var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, scanChunk); return &b }}

// errOverrun reports a frame whose declared length runs past the end of
// the readable bytes: a torn tail during recovery, corruption otherwise.
var errOverrun = errors.New("frame runs past the end")

// segReader reads frames sequentially from one segment file through a
// chunk buffer. Recovery and Scan share it.
type segReader struct {
	f      vfs.File
	base   int64  // logical position of the file's first byte
	end    int64  // logical end of the readable bytes
	buf    []byte // holds the bytes of [bufPos, bufPos+len(buf))
	bufPos int64
	pooled *[]byte
	// readahead is how much one read fetches beyond what is asked for; a
	// Scan for a few records should not read a whole chunk each time.
	readahead int
}

func newSegReader(f vfs.File, base, end int64) *segReader {
	p := chunkPool.Get().(*[]byte)
	return &segReader{f: f, base: base, end: end, buf: (*p)[:0], pooled: p, readahead: scanChunk}
}

// reset points the reader at another segment, keeping its buffer.
func (r *segReader) reset(f vfs.File, base, end int64) {
	r.f, r.base, r.end = f, base, end
	r.buf, r.bufPos = r.buf[:0], 0
}

func (r *segReader) close() {
	if r.pooled != nil {
		chunkPool.Put(r.pooled)
		r.pooled = nil
	}
}

// frameAt reads and fully checks the frame at pos. It fails with
// errOverrun when the frame does not fit before end, with ErrCorruption
// when its bytes are bad, and with a plain I/O error when reading fails.
// The returned bytes alias the reader's buffer.
func (r *segReader) frameAt(pos int64) ([]byte, frame, error) {
	if r.end-pos < minFrameSize {
		return nil, frame{}, errOverrun
	}
	hdr, err := r.window(pos, 4)
	if err != nil {
		return nil, frame{}, err
	}
	n, err := PeekHeader(hdr)
	if err != nil {
		return nil, frame{}, err
	}
	if int64(n) > r.end-pos {
		return nil, frame{}, errOverrun
	}
	b, err := r.window(pos, n)
	if err != nil {
		return nil, frame{}, err
	}
	f, err := checkFrame(b)
	return b, f, err
}

// window returns the n bytes at pos, reading ahead a chunk (bounded by end)
// when they are not buffered.
func (r *segReader) window(pos int64, n int) ([]byte, error) {
	if off := pos - r.bufPos; pos >= r.bufPos && off+int64(n) <= int64(len(r.buf)) {
		return r.buf[off : off+int64(n)], nil
	}
	want := int(min(int64(max(n, r.readahead)), r.end-pos))
	if want > cap(r.buf) {
		r.buf = make([]byte, want) // one oversized record; the pooled buffer comes back at close
	}
	r.buf = r.buf[:want]
	got, err := r.f.ReadAt(r.buf, pos-r.base)
	if got < want {
		r.buf = r.buf[:0]
		if err == nil || err == io.EOF {
			return nil, fmt.Errorf("%w: segment %d ends at %d, before the log does", ErrCorruption, r.base, r.base+int64(got))
		}
		return nil, fmt.Errorf("commitlog: read segment %d: %w", r.base, err)
	}
	r.bufPos = pos
	return r.buf[:n], nil
}

// ReadAt returns a copy of the size bytes at pos: raw framed records, as
// located by an index. It fails with ErrOutOfRange unless
// MinPos <= pos and pos+size <= WrittenPos and the range lies in one segment.
func (l *Log) ReadAt(pos int64, size int) ([]byte, error) {
	if err := l.checkRange(pos, size); err != nil {
		return nil, err // before allocating: size is the caller's word
	}
	buf := make([]byte, size)
	if err := l.readInto(buf, pos); err != nil {
		return nil, err
	}
	return buf, nil
}

func (l *Log) readInto(buf []byte, pos int64) error {
	if err := l.checkRange(pos, len(buf)); err != nil {
		return err
	}
	seg, end, err := l.acquireAt(pos)
	if err != nil {
		return err
	}
	defer seg.release()
	if pos+int64(len(buf)) > end {
		return fmt.Errorf("%w: [%d, %d) crosses the end of segment %d", ErrOutOfRange, pos, pos+int64(len(buf)), seg.base)
	}
	n, err := seg.f.ReadAt(buf, pos-seg.base)
	if n == len(buf) {
		return nil
	}
	// A concurrent Truncate may have cut the range after it was checked.
	if rerr := l.checkRange(pos, len(buf)); rerr != nil {
		return rerr
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("%w: segment %d is shorter than the log", ErrCorruption, seg.base)
	}
	return fmt.Errorf("commitlog: read at %d: %w", pos, err)
}

func (l *Log) checkRange(pos int64, size int) error {
	if l.closed.Load() {
		return ErrClosed
	}
	minPos, written := l.minPos.Load(), l.written.Load()
	if size < 0 || pos < minPos || pos+int64(size) > written {
		return fmt.Errorf("%w: [%d, %d) outside [%d, %d)", ErrOutOfRange, pos, pos+int64(size), minPos, written)
	}
	return nil
}

// ReadMessage reads and decodes the record of size bytes at pos. A record
// that fails its checksum or does not decode is never returned: the error
// wraps ErrCorruption, and the corruption is logged, counted and passed to
// Hooks.OnCorruption.
func (l *Log) ReadMessage(pos int64, size int) (Message, error) {
	if err := l.checkRange(pos, size); err != nil {
		return Message{}, err
	}
	// DecodeRecord copies what it returns, so the raw bytes can go to a
	// pooled buffer instead of a fresh allocation per message.
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	if cap(*bp) < size {
		*bp = make([]byte, size)
	}
	b := (*bp)[:size]
	if err := l.readInto(b, pos); err != nil {
		if errors.Is(err, ErrCorruption) {
			l.reportCorruption(pos, err)
		}
		return Message{}, err
	}
	m, n, err := DecodeRecord(b)
	if err == nil && n != size {
		err = fmt.Errorf("%w: record is %d bytes, expected %d", ErrCorruption, n, size)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: record is longer than the expected %d bytes", ErrCorruption, size)
	}
	if err != nil {
		l.reportCorruption(pos, err)
		return Message{}, err
	}
	return m, nil
}

func (l *Log) reportCorruption(pos int64, err error) {
	l.m.corruptRecords.Add(1)
	l.logger.Error("corrupt record", "pos", pos, "err", err)
	if hook := l.opts.Hooks.OnCorruption; hook != nil {
		hook(pos, err)
	}
}

// Scan calls fn for each record from pos (a record boundary or a segment
// base) on, while records end at or below limit (clamped to WrittenPos) and
// the bytes visited stay within maxBytes — always at least one record;
// maxBytes <= 0 means no byte limit. End-of-segment markers are skipped.
// pos outside [MinPos, WrittenPos] is ErrOutOfRange (after a Truncate or a
// Retain, the caller must move back or forward).
// It returns the position after the last record visited, which is where
// the next Scan continues.
//
// rec aliases an internal buffer valid only during fn. Every record is
// checked (checksum and layout) before fn sees it; a bad one stops the scan
// with an error wrapping ErrCorruption and next at the bad record. If fn
// returns an error the scan stops with it, and next is the position of the
// record fn refused.
func (l *Log) Scan(pos, limit int64, maxBytes int, fn func(pos int64, rec []byte) error) (next int64, err error) {
	if err := l.checkRange(pos, 0); err != nil {
		return pos, err
	}
	limit = min(limit, l.written.Load())
	s := scanner{l: l, limit: limit, maxBytes: maxBytes}
	defer s.close()
	visited := 0
	for pos < limit {
		b, f, err := s.frameAt(pos)
		if err != nil || f.kind == 0 {
			return pos, err
		}
		if f.kind == frameMarker {
			pos += int64(f.n)
			continue
		}
		if maxBytes > 0 && visited > 0 && visited+f.n > maxBytes {
			break
		}
		if err := fn(pos, b); err != nil {
			return pos, err
		}
		pos += int64(f.n)
		visited += f.n
	}
	return pos, nil
}

// scanner moves a segReader from segment to segment for Scan.
type scanner struct {
	l        *Log
	limit    int64
	maxBytes int
	seg      *segment
	segEnd   int64
	r        *segReader
}

// frameAt returns the checked frame at pos. A frame of kind 0 with a nil
// error means the record runs past a limit set inside the segment: not an
// error, just the end of this scan.
func (s *scanner) frameAt(pos int64) ([]byte, frame, error) {
	if err := s.moveTo(pos); err != nil {
		return nil, frame{}, err
	}
	b, f, err := s.r.frameAt(pos)
	if errors.Is(err, errOverrun) && s.r.end < s.segEnd {
		return nil, frame{}, nil
	}
	if errors.Is(err, errOverrun) {
		err = fmt.Errorf("%w: frame at %d runs past the end of segment %d", ErrCorruption, pos, s.seg.base)
	}
	if errors.Is(err, ErrCorruption) {
		if s.l.written.Load() < s.limit {
			// Not corruption: a concurrent Truncate cut what we were reading.
			return nil, frame{}, fmt.Errorf("%w: log truncated below %d during the scan", ErrOutOfRange, s.limit)
		}
		s.l.reportCorruption(pos, err)
	}
	return b, f, err
}

// moveTo makes sure the reader is on the segment holding pos.
func (s *scanner) moveTo(pos int64) error {
	if s.seg != nil && pos < s.segEnd {
		return nil
	}
	if s.seg != nil {
		s.seg.release()
		s.seg = nil
	}
	seg, end, err := s.l.acquireAt(pos)
	if err != nil {
		return err
	}
	s.seg, s.segEnd = seg, end
	if s.r == nil {
		s.r = newSegReader(seg.f, seg.base, min(end, s.limit))
		if s.maxBytes > 0 {
			s.r.readahead = min(max(s.maxBytes, minReadahead), scanChunk)
		}
	} else {
		s.r.reset(seg.f, seg.base, min(end, s.limit))
	}
	return nil
}

func (s *scanner) close() {
	if s.seg != nil {
		s.seg.release()
	}
	if s.r != nil {
		s.r.close()
	}
}
