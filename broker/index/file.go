package index

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/duomq/duomq/internal/mmapfile"
	"github.com/duomq/duomq/internal/seqname"
	"golang.org/x/sys/unix"
)

const tmpSuffix = mmapfile.TmpSuffix

// file is one mapped index file. hdr and dirty belong to the writer (wmu);
// data is replaced only under the index's exclusive lock.
type file struct {
	name  int64 // the position in the file name
	path  string
	data  []byte
	hdr   header
	dirty bool // written since the last Flush
}

func fileName(name int64) string { return seqname.Format(name) }

func parseFileName(s string) (int64, bool) { return seqname.Parse(s) }

// createFile creates an empty index file with the geometry of opts (package
// mmapfile: it appears under its real name only complete and synced).
func createFile(dir string, name int64, opts Options) (*file, error) {
	hdr := header{slots: uint32(opts.SlotCount), capacity: uint32(opts.EntriesPerFile)}
	head := make([]byte, headerSize)
	hdr.encode(head)
	path := filepath.Join(dir, fileName(name))
	data, err := mmapfile.Create(path, hdr.fileSize(), head)
	if err != nil {
		return nil, fmt.Errorf("index: create file: %w", err)
	}
	return newFile(path, name, data)
}

// openFile maps an existing file and checks its header.
func openFile(path string, name int64) (*file, error) {
	data, err := mmapfile.Map(path, func(n int64) error {
		if n < headerSize || n > 1<<31 {
			return fmt.Errorf("%w: %s is %d bytes", ErrCorruption, path, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: open file: %w", err)
	}
	return newFile(path, name, data)
}

// newFile wraps a mapping after checking its header.
func newFile(path string, name int64, data []byte) (*file, error) {
	f := &file{name: name, path: path, data: data}
	var err error
	if f.hdr, err = decodeHeader(data, len(data)); err != nil {
		f.unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

func (f *file) full() bool { return f.hdr.count == f.hdr.capacity }

func (f *file) slot(i uint32) []byte {
	off := headerSize + int(i)*slotSize
	return f.data[off : off+slotSize]
}

// entryBytes returns the bytes of the 1-based entry idx.
func (f *file) entryBytes(idx uint32) []byte {
	off := headerSize + int(f.hdr.slots)*slotSize + int(idx-1)*entrySize
	return f.data[off : off+entrySize]
}

// add appends an entry and links it into its chain. The entry is complete
// before the slot store makes it reachable. Caller holds wmu.
func (f *file) add(h uint32, pos, storeTime int64) {
	s := f.slot(h % f.hdr.slots)
	prev := loadSlot(s)
	if prev == 0 {
		f.hdr.usedSlots++
	}
	idx := f.hdr.count + 1
	entry{hash: h, pos: pos, storeTime: storeTime, prev: prev}.encode(f.entryBytes(idx))
	storeSlot(s, idx)
	f.hdr.observe(pos, storeTime)
	f.dirty = true
}

// lookup walks the chain of hash h newest first and calls fn for each
// matching position until fn returns false. Lookup holds the index's shared
// lock, so the mapping stays valid; hdr.slots and hdr.capacity never change
// after open, so reading them races with nothing.
func (f *file) lookup(h uint32, fn func(pos int64) bool) {
	idx := loadSlot(f.slot(h % f.hdr.slots))
	for idx != 0 && idx <= f.hdr.capacity {
		e := decodeEntry(f.entryBytes(idx))
		if e.hash == h && !fn(e.pos) {
			return
		}
		if e.prev >= idx {
			return // chains only go back; anything else is damage
		}
		idx = e.prev
	}
}

// needsRebuild reports whether a slot points past the durable entry count,
// which means entries were added after the last Flush and may be torn.
func (f *file) needsRebuild() bool {
	if f.full() {
		return false // a full count is only written after the body is durable
	}
	for i := range f.hdr.slots {
		if loadSlot(f.slot(i)) > f.hdr.count {
			return true
		}
	}
	return false
}

// rebuild recomputes the slot table, every chain link and the header ranges
// from the first count entries, discarding anything added after them.
func (f *file) rebuild() {
	clear(f.data[headerSize : headerSize+int(f.hdr.slots)*slotSize])
	n := f.hdr.count
	f.hdr = header{slots: f.hdr.slots, capacity: f.hdr.capacity}
	for idx := uint32(1); idx <= n; idx++ {
		e := decodeEntry(f.entryBytes(idx))
		f.add(e.hash, e.pos, e.storeTime)
	}
}

// flushBody makes the mapped file durable, then records snap as its header
// and makes that durable too, so the header never describes entries that
// are not on disk.
func (f *file) flushBody(snap header) error {
	if err := unix.Msync(f.data, unix.MS_SYNC); err != nil {
		return fmt.Errorf("index: msync %s: %w", f.path, err)
	}
	snap.encode(f.data[:headerSize])
	if err := unix.Msync(f.data[:min(len(f.data), os.Getpagesize())], unix.MS_SYNC); err != nil {
		return fmt.Errorf("index: msync %s: %w", f.path, err)
	}
	return nil
}

func (f *file) unmap() error {
	if f.data == nil {
		return nil
	}
	err := mmapfile.Unmap(f.data)
	f.data = nil
	if err != nil {
		return fmt.Errorf("index: munmap %s: %w", f.path, err)
	}
	return nil
}
