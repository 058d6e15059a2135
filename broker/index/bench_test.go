package index

import (
	"strconv"
	"testing"
)

func benchIndex(b *testing.B, n int) *Index {
	b.Helper()
	ix, err := Open(b.TempDir(), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ix.Close() })
	for i := range n {
		if err := ix.Add(benchKey(i), int64(i)*1024, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	return ix
}

// benchKey looks like the message id keys the broker adds.
func benchKey(i int) string { return "i\x00AC11000100002A9F0000" + strconv.Itoa(i) }

// BenchmarkAdd covers the dispatcher's path with default geometry; it
// includes file creation each 2,000,000 entries.
func BenchmarkAdd(b *testing.B) {
	ix := benchIndex(b, 0)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := ix.Add(keys[i&(len(keys)-1)], int64(i)*1024, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

const benchEntries = 1 << 20

func BenchmarkLookup(b *testing.B) {
	ix := benchIndex(b, benchEntries)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = benchKey(i * 13 % benchEntries)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		got, err := ix.Lookup(keys[i&(len(keys)-1)], 32)
		if err != nil || len(got) == 0 {
			b.Fatal(got, err)
		}
	}
}

func BenchmarkLookupMiss(b *testing.B) {
	ix := benchIndex(b, benchEntries)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ix.Lookup("i\x00missing"+strconv.Itoa(i&0xffff), 32); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupParallel(b *testing.B) {
	ix := benchIndex(b, benchEntries)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := ix.Lookup(benchKey(i*13%benchEntries), 32); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
