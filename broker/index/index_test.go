package index

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var small = Options{SlotCount: 4, EntriesPerFile: 8}

func openTest(t testing.TB, dir string, opts Options) *Index {
	t.Helper()
	ix, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func mustAdd(t testing.TB, ix *Index, key string, pos int64) {
	t.Helper()
	if err := ix.Add(key, pos, 1_700_000_000_000+pos); err != nil {
		t.Fatalf("add %q@%d: %v", key, pos, err)
	}
}

func lookup(t testing.TB, ix *Index, key string, max int) []int64 {
	t.Helper()
	got, err := ix.Lookup(key, max)
	if err != nil {
		t.Fatalf("lookup %q: %v", key, err)
	}
	return got
}

// assertContains checks that every wanted position is among the candidates
// (collisions may add others).
func assertContains(t *testing.T, got, want []int64) {
	t.Helper()
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Fatalf("candidates %v miss position %d", got, p)
		}
	}
}

func indexFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestAddLookup(t *testing.T) {
	ix := openTest(t, t.TempDir(), Options{SlotCount: 1024, EntriesPerFile: 1024})
	mustAdd(t, ix, "i\x00id-1", 100)
	mustAdd(t, ix, "k\x00orders\x00cust-7", 100)
	mustAdd(t, ix, "k\x00orders\x00cust-7", 250)
	mustAdd(t, ix, "i\x00id-2", 250)
	mustAdd(t, ix, "k\x00orders\x00cust-7", 400)
	tests := []struct {
		key  string
		max  int
		want []int64
	}{
		{"i\x00id-1", 10, []int64{100}},
		{"i\x00id-2", 10, []int64{250}},
		{"k\x00orders\x00cust-7", 10, []int64{400, 250, 100}},
		{"k\x00orders\x00cust-7", 2, []int64{400, 250}},
		{"k\x00orders\x00cust-7", 0, nil},
		{"i\x00missing", 10, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%d", tt.key, tt.max), func(t *testing.T) {
			if got := lookup(t, ix, tt.key, tt.max); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if ix.LastPos() != 400 {
		t.Fatalf("LastPos = %d", ix.LastPos())
	}
}

func TestEmpty(t *testing.T) {
	ix := openTest(t, t.TempDir(), small)
	if ix.LastPos() != -1 {
		t.Fatalf("LastPos = %d, want -1", ix.LastPos())
	}
	if got := lookup(t, ix, "x", 5); got != nil {
		t.Fatalf("got %v", got)
	}
	if err := ix.Add("x", -1, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative pos: %v", err)
	}
}

// TestCollisionsNeverMiss fills tiny tables with many keys: every chain is
// shared, files roll over, and still every position is found.
func TestCollisionsNeverMiss(t *testing.T) {
	for _, opts := range []Options{{SlotCount: 1, EntriesPerFile: 7}, small, {SlotCount: 3, EntriesPerFile: 100}} {
		t.Run(fmt.Sprintf("%d-slots-%d-entries", opts.SlotCount, opts.EntriesPerFile), func(t *testing.T) {
			dir := t.TempDir()
			ix := openTest(t, dir, opts)
			want := addMany(t, ix, 200)
			checkAll(t, ix, want)
			ix.Close()
			checkAll(t, openTest(t, dir, opts), want)
		})
	}
}

// addMany adds keys "key-0".."key-19" round robin at positions 0, 10, 20...
// and returns each key's positions, newest first.
func addMany(t *testing.T, ix *Index, n int) map[string][]int64 {
	t.Helper()
	want := map[string][]int64{}
	for i := range n {
		key := fmt.Sprint("key-", i%20)
		pos := int64(i * 10)
		mustAdd(t, ix, key, pos)
		want[key] = append([]int64{pos}, want[key]...)
	}
	return want
}

func checkAll(t *testing.T, ix *Index, want map[string][]int64) {
	t.Helper()
	for key, positions := range want {
		got := lookup(t, ix, key, 1_000)
		assertContains(t, got, positions)
		// Candidates of the key itself keep the newest-first order.
		var own []int64
		for _, p := range got {
			if slices.Contains(positions, p) {
				own = append(own, p)
			}
		}
		if !slices.Equal(own, positions) {
			t.Fatalf("%s: order %v, want %v", key, own, positions)
		}
	}
}

func TestRollover(t *testing.T) {
	dir := t.TempDir()
	ix := openTest(t, dir, small)
	for i := range 20 {
		mustAdd(t, ix, fmt.Sprint("k", i), int64(1000+i))
	}
	want := []string{fileName(1000), fileName(1008), fileName(1016)}
	if got := indexFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	for i := range 20 {
		assertContains(t, lookup(t, ix, fmt.Sprint("k", i), 10), []int64{int64(1000 + i)})
	}
}

func TestFileNamesIncreaseWhenPositionsGoBack(t *testing.T) {
	dir := t.TempDir()
	ix := openTest(t, dir, Options{SlotCount: 2, EntriesPerFile: 2})
	for _, pos := range []int64{100, 200, 300, 50, 60} { // re-dispatch from 50
		mustAdd(t, ix, "k", pos)
	}
	want := []string{fileName(100), fileName(300), fileName(301)}
	if got := indexFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	if got := lookup(t, ix, "k", 10); !slices.Equal(got, []int64{60, 50, 300, 200, 100}) {
		t.Fatalf("lookup %v", got)
	}
}

func TestDedupe(t *testing.T) {
	dir := t.TempDir()
	ix := openTest(t, dir, small)
	for _, pos := range []int64{10, 20, 30} {
		mustAdd(t, ix, "k", pos)
	}
	// A restart re-dispatches from 20: the same pairs are added again,
	// across a file boundary.
	for _, pos := range []int64{20, 30, 20, 30, 40} {
		mustAdd(t, ix, "k", pos)
	}
	want := []int64{40, 30, 20, 10}
	if got := lookup(t, ix, "k", 10); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := lookup(t, ix, "k", 3); !slices.Equal(got, want[:3]) {
		t.Fatalf("max 3: got %v", got)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ix := openTest(t, dir, small)
	want := addMany(t, ix, 50)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	// Different options: existing files keep their geometry.
	ix = openTest(t, dir, Options{SlotCount: 16, EntriesPerFile: 32})
	checkAll(t, ix, want)
	if ix.LastPos() != 490 {
		t.Fatalf("LastPos = %d", ix.LastPos())
	}
	mustAdd(t, ix, "key-0", 500)
	want["key-0"] = append([]int64{500}, want["key-0"]...)
	checkAll(t, ix, want)
}

// TestRecoveryAfterUnflushedAdds simulates a crash: the header on disk
// lags behind entries and slots added after the last Flush.
func TestRecoveryAfterUnflushedAdds(t *testing.T) {
	dir := t.TempDir()
	ix := openTest(t, dir, Options{SlotCount: 2, EntriesPerFile: 100})
	for i := range 10 {
		mustAdd(t, ix, fmt.Sprint("k", i%3), int64(i))
	}
	if err := ix.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 15; i++ {
		mustAdd(t, ix, fmt.Sprint("k", i%3), int64(i))
	}
	// Crash: drop the mappings without the flush Close would do.
	ix.mu.Lock()
	ix.unmapAll()
	ix.closed = true
	ix.mu.Unlock()

	ix = openTest(t, dir, Options{})
	if ix.LastPos() != 9 {
		t.Fatalf("LastPos = %d, want 9 (the flushed part)", ix.LastPos())
	}
	for k := range 3 {
		var want []int64
		for i := 9; i >= 0; i-- {
			if i%3 == k {
				want = append(want, int64(i))
			}
		}
		if got := lookup(t, ix, fmt.Sprint("k", k), 100); !slices.Equal(got, want) {
			t.Fatalf("k%d: got %v, want %v", k, got, want)
		}
	}
	// Re-dispatch adds the lost part again; chains stay intact.
	for i := 10; i < 15; i++ {
		mustAdd(t, ix, fmt.Sprint("k", i%3), int64(i))
	}
	if got := lookup(t, ix, "k1", 100); !slices.Equal(got, []int64{13, 10, 7, 4, 1}) {
		t.Fatalf("after re-add: %v", got)
	}
}

func TestDeleteBelow(t *testing.T) {
	tests := []struct {
		name      string
		pos       int64
		wantFiles []string
	}{
		{"nothing", 0, []string{fileName(0), fileName(80), fileName(160)}},
		{"not all of first file", 70, []string{fileName(0), fileName(80), fileName(160)}},
		{"first file", 71, []string{fileName(80), fileName(160)}},
		{"two files", 151, []string{fileName(160)}},
		{"never the last file", 1 << 40, []string{fileName(160)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ix := openTest(t, dir, small)
			want := addMany(t, ix, 20) // positions 0..190, 8 per file
			if err := ix.DeleteBelow(tt.pos); err != nil {
				t.Fatal(err)
			}
			if got := indexFiles(t, dir); !slices.Equal(got, tt.wantFiles) {
				t.Fatalf("files %v, want %v", got, tt.wantFiles)
			}
			// Positions in the remaining files are still found.
			first, _ := parseFileName(tt.wantFiles[0])
			for key, positions := range want {
				var live []int64
				for _, p := range positions {
					if p >= first {
						live = append(live, p)
					}
				}
				assertContains(t, lookup(t, ix, key, 100), live)
			}
			mustAdd(t, ix, "after", 1000)
			assertContains(t, lookup(t, ix, "after", 1), []int64{1000})
		})
	}
}

func TestCorruptFiles(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"bad magic", func(t *testing.T, path string) { patch(t, path, 0, []byte("XXXX")) }},
		{"bad version", func(t *testing.T, path string) { patch(t, path, 4, []byte{9}) }},
		{"short", func(t *testing.T, path string) { os.Truncate(path, 10) }},
		{"size disagrees with header", func(t *testing.T, path string) { os.Truncate(path, 1000) }},
		{"count above capacity", func(t *testing.T, path string) { patch(t, path, 52, []byte{0xff, 0, 0, 0}) }},
		{"zero slots", func(t *testing.T, path string) { patch(t, path, 8, []byte{0, 0, 0, 0}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ix := openTest(t, dir, small)
			mustAdd(t, ix, "k", 5)
			ix.Close()
			tt.damage(t, filepath.Join(dir, fileName(5)))
			if _, err := Open(dir, small); !errors.Is(err, ErrCorruption) {
				t.Fatalf("err = %v, want ErrCorruption", err)
			}
		})
	}
}

func patch(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestLeftoverTempFileIsRemoved(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, fileName(0)+tmpSuffix)
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, small)
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover still there: %v", err)
	}
}

func TestClose(t *testing.T) {
	ix := openTest(t, t.TempDir(), small)
	mustAdd(t, ix, "k", 1)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	calls := map[string]func() error{
		"Add":         func() error { return ix.Add("k", 2, 0) },
		"Lookup":      func() error { _, err := ix.Lookup("k", 1); return err },
		"DeleteBelow": func() error { return ix.DeleteBelow(0) },
		"Flush":       ix.Flush,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v", name, err)
		}
	}
}

func TestOptions(t *testing.T) {
	d := DefaultOptions()
	if d.SlotCount != 500_000 || d.EntriesPerFile != 2_000_000 {
		t.Fatalf("defaults %+v", d)
	}
	for _, o := range []Options{{SlotCount: -1}, {EntriesPerFile: -1}, {SlotCount: maxGeometry + 1}} {
		if _, err := Open(t.TempDir(), o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
}

func TestKeyHashIsStable(t *testing.T) {
	// Part of the file format: FNV-1a 32.
	if got := keyHash("a"); got != 0xe40c292c {
		t.Fatalf("keyHash(a) = %x", got)
	}
}
