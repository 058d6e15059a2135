// Package seqname names the files of the storage engine's sequences
// (commitlog segments, consume-queue and index files) by the number of
// their first position or offset: 20 zero-padded decimal digits, enough for
// any non-negative int64, so that names sort in numeric order.
package seqname

import (
	"fmt"
	"strconv"
)

// Len is the length of every name.
const Len = 20

// Format returns the file name of n (n >= 0).
func Format(n int64) string { return fmt.Sprintf("%0*d", Len, n) }

// Parse returns the number a name encodes, and false for any other file.
func Parse(name string) (int64, bool) {
	if len(name) != Len {
		return 0, false
	}
	for _, c := range name {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(name, 10, 64)
	return n, err == nil
}
