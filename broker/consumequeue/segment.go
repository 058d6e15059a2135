package consumequeue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/duomq/duomq/internal/mmapfile"
	"github.com/duomq/duomq/internal/seqname"
	"golang.org/x/sys/unix"
)

// tmpSuffix marks a file still being created; Open deletes leftovers.
const tmpSuffix = mmapfile.TmpSuffix

// segment is one mapped file. Its mapping is fixed for its lifetime: only
// the writer unmaps it, under the queue's exclusive lock.
type segment struct {
	base int64  // queue offset of slot 0
	path string // file path, for removal and errors
	data []byte // the whole file, mapped shared read-write
}

func segmentName(base int64) string { return seqname.Format(base) }

// parseSegmentName returns the base offset a file name encodes.
func parseSegmentName(name string) (int64, bool) { return seqname.Parse(name) }

// createSegment creates a zero-filled file of size bytes for base and maps
// it (package mmapfile: never a short file after a crash).
func createSegment(dir string, base int64, size int) (*segment, error) {
	path := filepath.Join(dir, segmentName(base))
	data, err := mmapfile.Create(path, size, nil)
	if err != nil {
		return nil, fmt.Errorf("consumequeue: create segment: %w", err)
	}
	return &segment{base: base, path: path, data: data}, nil
}

// openSegment maps an existing file, which must be exactly size bytes.
func openSegment(path string, base int64, size int) (*segment, error) {
	data, err := mmapfile.Map(path, func(n int64) error {
		if n != int64(size) {
			return fmt.Errorf("%w: %s is %d bytes, want %d", ErrCorruption, path, n, size)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("consumequeue: open segment: %w", err)
	}
	return &segment{base: base, path: path, data: data}, nil
}

func (s *segment) slot(offset int64) []byte {
	i := int(offset-s.base) * EntrySize
	return s.data[i : i+EntrySize]
}

func (s *segment) entry(offset int64) Entry {
	return decodeEntry(s.slot(offset))
}

// sync writes the slots [from, to) of the segment to disk. msync needs a
// page-aligned start, so the range is widened down to a page boundary.
func (s *segment) sync(from, to int64) error {
	if from >= to {
		return nil
	}
	start := int(from-s.base) * EntrySize
	end := int(to-s.base) * EntrySize
	start &^= os.Getpagesize() - 1
	if err := unix.Msync(s.data[start:end], unix.MS_SYNC); err != nil {
		return fmt.Errorf("consumequeue: msync %s: %w", s.path, err)
	}
	return nil
}

// zero clears the slots [from, to), writing only slots that are not already
// zero so that untouched sparse pages stay unallocated.
func (s *segment) zero(from, to int64) {
	for off := from; off < to; off++ {
		if b := s.slot(off); !isZero(b) {
			clear(b)
		}
	}
}

func (s *segment) unmap() error {
	if s.data == nil {
		return nil
	}
	err := mmapfile.Unmap(s.data)
	s.data = nil
	if err != nil {
		return fmt.Errorf("consumequeue: munmap %s: %w", s.path, err)
	}
	return nil
}

// zeroTail clears every slot from offset to the end of the file and makes
// that durable. It visits only the file's data extents: the unwritten rest
// of a sparse file is skipped, so recovery does not read megabytes of
// zeros per queue (and fill the page cache with them).
func (s *segment) zeroTail(offset int64) error {
	slots := int64(len(s.data) / EntrySize)
	changed := false
	err := dataExtents(s.path, int(offset-s.base)*EntrySize, len(s.data), func(start, end int) {
		from := max(offset, s.base+int64(start/EntrySize))
		to := min(s.base+slots, s.base+int64((end+EntrySize-1)/EntrySize))
		for off := from; off < to; off++ {
			if b := s.slot(off); !isZero(b) {
				clear(b)
				changed = true
			}
		}
	})
	if err != nil || !changed {
		return err
	}
	return s.sync(offset, s.base+slots)
}

// dataExtents calls fn for each byte range [start, end) of the file at or
// after from that may hold data. Where SEEK_DATA is not supported the whole
// rest of the file is one extent.
func dataExtents(path string, from, size int, fn func(start, end int)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("consumequeue: %w", err)
	}
	defer f.Close()
	for off := int64(from); off < int64(size); {
		start, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			fn(int(off), size)
			return nil
		}
		end, err := f.Seek(start, unix.SEEK_HOLE)
		if err != nil || end > int64(size) {
			end = int64(size)
		}
		fn(int(start), int(end))
		off = end
	}
	return nil
}
