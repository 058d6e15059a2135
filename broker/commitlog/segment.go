package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/duomq/duomq/internal/seqname"
	"github.com/duomq/duomq/internal/vfs"
)

// segment is one file of the log, holding positions [base, next base).
// Positions are contiguous: a segment ends where the next one begins, and
// the last one ends at the log's written position.
type segment struct {
	base int64
	path string
	f    vfs.File
	// refs counts the log's list (one) plus each reader or fsync in flight,
	// so that a segment dropped by Retain or Truncate is closed only after
	// its last user is done; unlinking an open file is safe on Unix.
	refs atomic.Int32

	// Guarded by Log.mu.
	sealed bool  // ends with an end-of-segment marker
	newest int64 // newest store time of its records (unix ns); 0 if unknown
}

func segmentName(base int64) string { return seqname.Format(base) }

// parseSegmentName returns the base position a segment file name encodes.
func parseSegmentName(name string) (int64, bool) { return seqname.Parse(name) }

func newSegment(base int64, path string, f vfs.File) *segment {
	s := &segment{base: base, path: path, f: f}
	s.refs.Store(1)
	return s
}

func (s *segment) acquire() { s.refs.Add(1) }

// release drops one reference and closes the file when it was the last.
func (s *segment) release() error {
	if s.refs.Add(-1) == 0 {
		return s.f.Close()
	}
	return nil
}

func releaseAll(segs []*segment) error {
	var errs []error
	for _, s := range segs {
		errs = append(errs, s.release())
	}
	return errors.Join(errs...)
}

// createSegment creates (or empties a stale leftover of) the file for a
// segment starting at base. Truncating a leftover is right: a file beyond
// the end of the log holds nothing the log still owns.
func (l *Log) createSegment(base int64) (*segment, error) {
	path := filepath.Join(l.opts.Dir, segmentName(base))
	f, err := l.fs.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("commitlog: create segment: %w", err)
	}
	return newSegment(base, path, f), nil
}

// segmentIndex returns the index in segs of the segment holding pos: the
// last one whose base is <= pos. segs must be non-empty and pos >= segs[0].base.
func segmentIndex(segs []*segment, pos int64) int {
	lo, hi := 0, len(segs)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if segs[mid].base <= pos {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// acquireAt finds the segment holding pos, takes a reference on it and
// returns it with its end (the next base, or the written position for the
// last segment). The caller releases it.
func (l *Log) acquireAt(pos int64) (*segment, int64, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	if len(l.segs) == 0 {
		return nil, 0, ErrClosed
	}
	if pos < l.segs[0].base {
		return nil, 0, fmt.Errorf("%w: position %d below the oldest segment %d", ErrOutOfRange, pos, l.segs[0].base)
	}
	i := segmentIndex(l.segs, pos)
	end := l.written.Load()
	if i+1 < len(l.segs) {
		end = l.segs[i+1].base
	}
	s := l.segs[i]
	s.acquire()
	return s, end, nil
}
