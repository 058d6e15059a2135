// Package msgid makes globally unique message ids.
//
// An id is 32 hex characters: 8 bytes of the creation time in unix
// nanoseconds (so ids sort roughly by time), 4 random bytes fixed per
// process, and a 4-byte counter. Two processes collide only if they draw the
// same 32-bit process value and stamp the same nanosecond with the same
// counter value.
package msgid

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

var (
	process [4]byte
	counter atomic.Uint32
)

func init() {
	if _, err := rand.Read(process[:]); err != nil {
		binary.BigEndian.PutUint32(process[:], uint32(time.Now().UnixNano()))
	}
}

// New returns a new unique id.
func New() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(time.Now().UnixNano()))
	copy(b[8:12], process[:])
	binary.BigEndian.PutUint32(b[12:16], counter.Add(1))
	return hex.EncodeToString(b[:])
}

// Valid reports whether id is acceptable as a client-supplied id: 1 to 128
// printable ASCII characters.
func Valid(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
