package index

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

const (
	headerSize  = 64
	slotSize    = 4
	entrySize   = 24
	fileVersion = 1
)

var magic = [4]byte{'D', 'Q', 'I', 'X'}

// header is the first 64 bytes of a file.
type header struct {
	slots, capacity    uint32
	beginTime, endTime int64
	beginPos, endPos   int64
	usedSlots, count   uint32
}

func (h header) fileSize() int {
	return headerSize + int(h.slots)*slotSize + int(h.capacity)*entrySize
}

func (h header) encode(b []byte) {
	_ = b[headerSize-1]
	copy(b, magic[:])
	le := binary.LittleEndian
	le.PutUint32(b[4:], fileVersion)
	le.PutUint32(b[8:], h.slots)
	le.PutUint32(b[12:], h.capacity)
	le.PutUint64(b[16:], uint64(h.beginTime))
	le.PutUint64(b[24:], uint64(h.endTime))
	le.PutUint64(b[32:], uint64(h.beginPos))
	le.PutUint64(b[40:], uint64(h.endPos))
	le.PutUint32(b[48:], h.usedSlots)
	le.PutUint32(b[52:], h.count)
	clear(b[56:headerSize])
}

// decodeHeader parses and checks the header of a file of size bytes.
func decodeHeader(b []byte, size int) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorruption, len(b))
	}
	if [4]byte(b[:4]) != magic {
		return header{}, fmt.Errorf("%w: bad magic %q", ErrCorruption, b[:4])
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[4:]); v != fileVersion {
		return header{}, fmt.Errorf("%w: unknown version %d", ErrCorruption, v)
	}
	h := header{
		slots: le.Uint32(b[8:]), capacity: le.Uint32(b[12:]),
		beginTime: int64(le.Uint64(b[16:])), endTime: int64(le.Uint64(b[24:])),
		beginPos: int64(le.Uint64(b[32:])), endPos: int64(le.Uint64(b[40:])),
		usedSlots: le.Uint32(b[48:]), count: le.Uint32(b[52:]),
	}
	return h, h.check(size)
}

func (h header) check(size int) error {
	switch {
	case h.slots == 0 || h.slots > maxGeometry || h.capacity == 0 || h.capacity > maxGeometry:
		return fmt.Errorf("%w: geometry %d slots, %d entries", ErrCorruption, h.slots, h.capacity)
	case h.fileSize() != size:
		return fmt.Errorf("%w: file is %d bytes, header says %d", ErrCorruption, size, h.fileSize())
	case h.count > h.capacity || h.usedSlots > h.slots:
		return fmt.Errorf("%w: %d entries, %d used slots", ErrCorruption, h.count, h.usedSlots)
	case h.count > 0 && (h.beginPos < 0 || h.beginPos > h.endPos):
		return fmt.Errorf("%w: position range [%d, %d]", ErrCorruption, h.beginPos, h.endPos)
	}
	return nil
}

// observe widens the header's ranges to include one more entry.
func (h *header) observe(pos, storeTime int64) {
	if h.count == 0 {
		h.beginPos, h.endPos, h.beginTime, h.endTime = pos, pos, storeTime, storeTime
	} else {
		h.beginPos, h.endPos = min(h.beginPos, pos), max(h.endPos, pos)
		h.beginTime, h.endTime = min(h.beginTime, storeTime), max(h.endTime, storeTime)
	}
	h.count++
}

// entry is one record of a chain.
type entry struct {
	hash      uint32
	pos       int64
	storeTime int64
	prev      uint32
}

func (e entry) encode(b []byte) {
	_ = b[entrySize-1]
	le := binary.LittleEndian
	le.PutUint32(b[0:], e.hash)
	le.PutUint64(b[4:], uint64(e.pos))
	le.PutUint64(b[12:], uint64(e.storeTime))
	le.PutUint32(b[20:], e.prev)
}

func decodeEntry(b []byte) entry {
	_ = b[entrySize-1]
	le := binary.LittleEndian
	return entry{
		hash:      le.Uint32(b[0:]),
		pos:       int64(le.Uint64(b[4:])),
		storeTime: int64(le.Uint64(b[12:])),
		prev:      le.Uint32(b[20:]),
	}
}

// keyHash is the 32-bit FNV-1a hash of key. It is part of the file format.
func keyHash(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}

// littleEndianHost tells whether native order is the file order, in which
// case slot values need no byte swap.
var littleEndianHost = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func toFileOrder(v uint32) uint32 {
	if littleEndianHost {
		return v
	}
	return bits.ReverseBytes32(v)
}

// loadSlot and storeSlot access a 4-byte aligned slot of the mapping
// atomically: the store publishes a fully written entry to concurrent
// lookups, and the load pairs with it.
func loadSlot(b []byte) uint32 {
	_ = b[slotSize-1]
	return toFileOrder(atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[0]))))
}

func storeSlot(b []byte, v uint32) {
	_ = b[slotSize-1]
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&b[0])), toFileOrder(v))
}
