package consumequeue

import (
	"encoding/binary"
	"hash/fnv"
)

// EntrySize is the size of one slot on disk.
const EntrySize = 20

// Entry locates one message of the queue in the commitlog.
type Entry struct {
	// Pos is the commitlog position of the record.
	Pos int64
	// Size is the record's length in bytes; always > 0.
	Size int32
	// TagHash is TagHash(tag) of the message, so that tag filtering can skip
	// records without reading them.
	TagHash int64
}

// TagHash returns the stable 64-bit FNV-1a hash of tag. The empty tag hashes
// to 0, and no other tag does, so 0 always means "untagged".
func TagHash(tag string) int64 {
	if tag == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(tag))
	if v := int64(h.Sum64()); v != 0 {
		return v
	}
	return 1
}

func encodeEntry(b []byte, e Entry) {
	_ = b[EntrySize-1]
	binary.LittleEndian.PutUint64(b[0:], uint64(e.Pos))
	binary.LittleEndian.PutUint32(b[8:], uint32(e.Size))
	binary.LittleEndian.PutUint64(b[12:], uint64(e.TagHash))
}

func decodeEntry(b []byte) Entry {
	_ = b[EntrySize-1]
	return Entry{
		Pos:     int64(binary.LittleEndian.Uint64(b[0:])),
		Size:    int32(binary.LittleEndian.Uint32(b[8:])),
		TagHash: int64(binary.LittleEndian.Uint64(b[12:])),
	}
}

// valid reports whether e can be a written entry whose predecessor is at
// prevPos (-1 when unknown).
func (e Entry) valid(prevPos int64) bool {
	return e.Size > 0 && e.Pos >= 0 && e.Pos > prevPos
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
