package consumequeue

import (
	"testing"
)

func benchQueue(b *testing.B, n int) *Queue {
	b.Helper()
	q, err := Open(b.TempDir(), DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	for i := range int64(n) {
		if err := q.Append(i, Entry{Pos: i * 1024, Size: 1024, TagHash: 7}); err != nil {
			b.Fatal(err)
		}
	}
	return q
}

// BenchmarkAppend includes file rollover (every 300,000 entries) but not
// Flush, matching the dispatcher's path.
func BenchmarkAppend(b *testing.B) {
	q := benchQueue(b, 0)
	b.ReportAllocs()
	b.SetBytes(EntrySize)
	for i := int64(0); b.Loop(); i++ {
		if err := q.Append(i, Entry{Pos: i * 1024, Size: 1024, TagHash: 7}); err != nil {
			b.Fatal(err)
		}
	}
}

const benchEntries = 1 << 20

func BenchmarkGet(b *testing.B) {
	q := benchQueue(b, benchEntries)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := q.Get(int64(i*7919) % benchEntries); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetParallel(b *testing.B) {
	q := benchQueue(b, benchEntries)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := q.Get(int64(i*7919) % benchEntries); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRange32 reads the batch a pull request typically asks for.
func BenchmarkRange32(b *testing.B) {
	q := benchQueue(b, benchEntries)
	buf := make([]Entry, 0, 32)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var err error
		buf, err = q.Range(int64(i*7919)%(benchEntries-32), 32, buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSearch(b *testing.B) {
	q := benchQueue(b, benchEntries)
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		target := (i * 7919 % benchEntries) * 1024
		if _, err := q.Search(func(e Entry) (bool, error) { return e.Pos >= target, nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReferenceMappedWrite is the floor under Append: encoding an entry
// into a mapped file with no locking or bookkeeping.
func BenchmarkReferenceMappedWrite(b *testing.B) {
	s, err := createSegment(b.TempDir(), 0, DefaultEntriesPerFile*EntrySize)
	if err != nil {
		b.Fatal(err)
	}
	defer s.unmap()
	b.SetBytes(EntrySize)
	for i := int64(0); b.Loop(); i++ {
		off := i % DefaultEntriesPerFile
		encodeEntry(s.slot(off), Entry{Pos: i * 1024, Size: 1024, TagHash: 7})
	}
}
