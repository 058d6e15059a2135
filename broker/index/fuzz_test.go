package index

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// validFile returns the bytes of a small index file holding a few keys.
func validFile(tb testing.TB) []byte {
	tb.Helper()
	dir := tb.TempDir()
	ix, err := Open(dir, Options{SlotCount: 3, EntriesPerFile: 6})
	if err != nil {
		tb.Fatal(err)
	}
	for i, key := range []string{"a", "b", "a", "c"} {
		if err := ix.Add(key, int64(10*i), int64(i)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := ix.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, fileName(0)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzIndexLookup opens an arbitrary file as an index and uses it: opening
// may fail with ErrCorruption, and nothing may panic or loop.
func FuzzIndexLookup(f *testing.F) {
	valid := validFile(f)
	f.Add(valid, "a")
	f.Add(valid[:headerSize], "b")
	f.Add([]byte("DQIX"), "")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fileName(0)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(dir, Options{SlotCount: 3, EntriesPerFile: 4})
		if err != nil {
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("open: unexpected error kind: %v", err)
			}
			return
		}
		defer ix.Close()
		exercise(t, ix, key)
	})
}

func exercise(t *testing.T, ix *Index, key string) {
	if _, err := ix.Lookup(key, 100); err != nil {
		t.Fatal(err)
	}
	for i := range 6 { // fills the file, if any room is left, and rolls over
		if err := ix.Add(key, 1000+int64(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ix.Lookup(key, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if !containsPos(got, 1000+int64(i)) {
			t.Fatalf("added position %d not found: %v", 1000+i, got)
		}
	}
	if err := ix.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := ix.DeleteBelow(1 << 40); err != nil {
		t.Fatal(err)
	}
}

func containsPos(s []int64, p int64) bool {
	for _, v := range s {
		if v == p {
			return true
		}
	}
	return false
}
