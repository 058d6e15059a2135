package consumequeue

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen writes arbitrary bytes as the files of a queue and checks that
// opening and using it never panics: the only outcomes are a working queue
// or an error.
func FuzzOpen(f *testing.F) {
	valid := make([]byte, 2*testPerFile*EntrySize)
	for i := range int64(6) {
		encodeEntry(valid[i*EntrySize:], entryFor(i))
	}
	f.Add(valid, false)
	f.Add(valid[:testPerFile*EntrySize+3], false)
	f.Add([]byte{1, 2, 3}, true)
	f.Fuzz(func(t *testing.T, data []byte, exactSize bool) {
		dir := t.TempDir()
		writeFuzzFiles(t, dir, data, exactSize)
		q, err := Open(dir, Options{EntriesPerFile: testPerFile})
		if err != nil {
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("open: unexpected error kind: %v", err)
			}
			return
		}
		defer q.Close()
		exercise(t, q)
	})
}

// writeFuzzFiles cuts data into files of the queue's size; with exactSize
// false the last one keeps whatever length is left.
func writeFuzzFiles(t *testing.T, dir string, data []byte, exactSize bool) {
	size := testPerFile * EntrySize
	for base := int64(0); len(data) > 0; base += testPerFile {
		n := min(size, len(data))
		chunk := data[:n]
		data = data[n:]
		if exactSize && n < size {
			chunk = append(chunk, make([]byte, size-n)...)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(base)), chunk, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func exercise(t *testing.T, q *Queue) {
	lo, hi := q.MinOffset(), q.MaxOffset()
	if lo > hi {
		t.Fatalf("bounds [%d, %d)", lo, hi)
	}
	// A hole in a file before the last is reported, not repaired.
	entries, err := q.Range(lo, int(hi-lo), nil)
	if err != nil && !errors.Is(err, ErrCorruption) {
		t.Fatalf("range: %v", err)
	}
	if _, err := q.Search(func(e Entry) (bool, error) { return e.Pos > 1000, nil }); err != nil && !errors.Is(err, ErrCorruption) {
		t.Fatalf("search: %v", err)
	}
	if err := q.TruncateFromPos(1000); err != nil {
		t.Fatalf("truncate: %v", err)
	}
	last := int64(-1)
	if n := len(entries); n > 0 && entries[n-1].Pos < 1000 {
		last = entries[n-1].Pos
	}
	if err := q.Append(q.MaxOffset(), Entry{Pos: max(last, 1000) + 1, Size: 1}); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if err := q.SetMinLogPos(last); err != nil {
		t.Fatalf("set min log pos: %v", err)
	}
}
