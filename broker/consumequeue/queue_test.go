package consumequeue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testPerFile = 4

func openTest(t testing.TB, dir string) *Queue {
	t.Helper()
	q, err := Open(dir, Options{EntriesPerFile: testPerFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// entryFor is the entry the tests write at offset: positions 100 apart so
// searches by position have room between entries.
func entryFor(offset int64) Entry {
	return Entry{Pos: 1000 + offset*100, Size: int32(10 + offset), TagHash: TagHash(fmt.Sprint("tag", offset%3))}
}

func appendN(t testing.TB, q *Queue, n int) {
	t.Helper()
	for range n {
		off := q.MaxOffset()
		if err := q.Append(off, entryFor(off)); err != nil {
			t.Fatalf("append %d: %v", off, err)
		}
	}
}

func segmentFiles(t *testing.T, dir string) []string {
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

func assertBounds(t *testing.T, q *Queue, min, max int64) {
	t.Helper()
	if q.MinOffset() != min || q.MaxOffset() != max {
		t.Fatalf("bounds [%d, %d), want [%d, %d)", q.MinOffset(), q.MaxOffset(), min, max)
	}
}

func assertEntries(t *testing.T, q *Queue, from, to int64) {
	t.Helper()
	for off := from; off < to; off++ {
		e, err := q.Get(off)
		if err != nil {
			t.Fatalf("get %d: %v", off, err)
		}
		if e != entryFor(off) {
			t.Fatalf("get %d = %+v, want %+v", off, e, entryFor(off))
		}
	}
}

func TestAppendGetAcrossFiles(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 8, 13} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			q := openTest(t, t.TempDir())
			appendN(t, q, n)
			assertBounds(t, q, 0, int64(n))
			assertEntries(t, q, 0, int64(n))
			wantFiles := (n + testPerFile - 1) / testPerFile
			if got := len(segmentFiles(t, q.dir)); got != wantFiles {
				t.Fatalf("%d files, want %d", got, wantFiles)
			}
		})
	}
}

func TestRange(t *testing.T) {
	q := openTest(t, t.TempDir())
	appendN(t, q, 10)
	tests := []struct {
		name    string
		from    int64
		max     int
		want    []int64
		wantErr error
	}{
		{"within file", 0, 3, []int64{0, 1, 2}, nil},
		{"across files", 2, 7, []int64{2, 3, 4, 5, 6, 7, 8}, nil},
		{"clipped at max offset", 7, 100, []int64{7, 8, 9}, nil},
		{"at max offset", 10, 5, nil, nil},
		{"zero max", 3, 0, nil, nil},
		{"negative max", 3, -1, nil, nil},
		{"beyond max offset", 11, 5, nil, ErrOutOfRange},
		{"negative", -1, 5, nil, ErrOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.Range(tt.from, tt.max, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var want []Entry
			for _, off := range tt.want {
				want = append(want, entryFor(off))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestRangeAppendsToDst(t *testing.T) {
	q := openTest(t, t.TempDir())
	appendN(t, q, 3)
	sentinel := Entry{Pos: -5}
	got, err := q.Range(1, 5, []Entry{sentinel})
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{sentinel, entryFor(1), entryFor(2)}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestGetOutOfRange(t *testing.T) {
	q := openTest(t, t.TempDir())
	appendN(t, q, 6)
	if err := q.SetMinLogPos(entryFor(2).Pos); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{-1, 0, 1, 6, 100} {
		_, err := q.Get(off)
		if !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("get %d: err = %v, want ErrOutOfRange", off, err)
		}
		if !strings.Contains(err.Error(), "[2, 6)") {
			t.Fatalf("error %q does not name the bounds", err)
		}
	}
}

func TestAppendErrors(t *testing.T) {
	q := openTest(t, t.TempDir())
	appendN(t, q, 2) // last pos 1100
	tests := []struct {
		name    string
		offset  int64
		entry   Entry
		wantErr error
		wantMsg string
	}{
		{"offset behind", 1, entryFor(2), ErrOffsetMismatch, "append at 1, next offset is 2"},
		{"offset ahead", 3, entryFor(2), ErrOffsetMismatch, "append at 3, next offset is 2"},
		{"zero size", 2, Entry{Pos: 5000, Size: 0}, ErrInvalidEntry, ""},
		{"negative size", 2, Entry{Pos: 5000, Size: -1}, ErrInvalidEntry, ""},
		{"negative pos", 2, Entry{Pos: -1, Size: 1}, ErrInvalidEntry, ""},
		{"pos not increasing", 2, Entry{Pos: 1100, Size: 1}, ErrInvalidEntry, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.Append(tt.offset, tt.entry)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not contain %q", err, tt.wantMsg)
			}
			assertBounds(t, q, 0, 2)
		})
	}
}

func TestReopenFindsMaxOffset(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 8, 11} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			q := openTest(t, dir)
			appendN(t, q, n)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			q = openTest(t, dir)
			assertBounds(t, q, 0, int64(n))
			assertEntries(t, q, 0, int64(n))
			// The position order check must survive the restart too.
			if n > 0 {
				err := q.Append(int64(n), entryFor(int64(n-1)))
				if !errors.Is(err, ErrInvalidEntry) {
					t.Fatalf("append of old pos: err = %v", err)
				}
			}
			appendN(t, q, 2)
			assertEntries(t, q, 0, int64(n+2))
		})
	}
}

func TestTruncateFromPos(t *testing.T) {
	tests := []struct {
		name    string
		pos     int64
		wantMax int64
	}{
		{"exact entry pos", entryFor(5).Pos, 5},
		{"between entries", entryFor(5).Pos - 1, 5},
		{"just after entry", entryFor(5).Pos + 1, 6},
		{"file boundary", entryFor(4).Pos, 4},
		{"before everything", 0, 0},
		{"after everything", 1 << 40, 10},
		{"last entry", entryFor(9).Pos, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openTest(t, dir)
			appendN(t, q, 10)
			if err := q.TruncateFromPos(tt.pos); err != nil {
				t.Fatal(err)
			}
			assertBounds(t, q, 0, tt.wantMax)
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			q = openTest(t, dir)
			assertBounds(t, q, 0, tt.wantMax)
			assertEntries(t, q, 0, tt.wantMax)
			appendN(t, q, 6)
			assertEntries(t, q, 0, tt.wantMax+6)
		})
	}
}

func TestTruncateTo(t *testing.T) {
	tests := []struct {
		name             string
		offset           int64
		wantMin, wantMax int64
		wantErr          error
	}{
		{"middle", 6, 0, 6, nil},
		{"file start", 8, 0, 8, nil},
		{"nothing", 10, 0, 10, nil},
		{"beyond", 50, 0, 10, nil},
		{"all", 0, 0, 0, nil},
		{"negative", -1, 0, 10, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openTest(t, dir)
			appendN(t, q, 10)
			if err := q.TruncateTo(tt.offset); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			assertBounds(t, q, tt.wantMin, tt.wantMax)
			q.Close()
			q = openTest(t, dir)
			assertBounds(t, q, tt.wantMin, tt.wantMax)
			assertEntries(t, q, tt.wantMin, tt.wantMax)
		})
	}
}

func TestTruncateBelowFirstFileResets(t *testing.T) {
	dir := t.TempDir()
	q := openTest(t, dir)
	appendN(t, q, 10)
	if err := q.SetMinLogPos(entryFor(9).Pos); err != nil {
		t.Fatal(err)
	}
	// Files [0,4) and [4,8) are gone; truncating to 2 restarts the queue.
	if err := q.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, q, 2, 2)
	q.Close()
	q = openTest(t, dir)
	assertBounds(t, q, 2, 2)
	appendN(t, q, 3)
	assertEntries(t, q, 2, 5)
}

func TestReset(t *testing.T) {
	for _, start := range []int64{0, 3, 4, 1_000_003} {
		t.Run(fmt.Sprint(start), func(t *testing.T) {
			dir := t.TempDir()
			q := openTest(t, dir)
			appendN(t, q, 6)
			if err := q.Reset(start); err != nil {
				t.Fatal(err)
			}
			assertBounds(t, q, start, start)
			if _, err := q.Get(start); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("get on empty queue: %v", err)
			}
			q.Close()

			q = openTest(t, dir)
			assertBounds(t, q, start, start)
			appendN(t, q, 6) // crosses a file boundary from an unaligned start
			q.Close()

			q = openTest(t, dir)
			assertBounds(t, q, start, start+6)
			assertEntries(t, q, start, start+6)
		})
	}
}

func TestResetErrors(t *testing.T) {
	q := openTest(t, t.TempDir())
	if err := q.Reset(-1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
}

func TestSetMinLogPos(t *testing.T) {
	tests := []struct {
		name      string
		pos       int64
		wantMin   int64
		wantFiles int // of 3: [0,4) [4,8) [8,12) with 10 entries
	}{
		{"nothing expired", 0, 0, 3},
		{"mid first file", entryFor(2).Pos, 2, 3},
		{"whole first file", entryFor(4).Pos, 4, 2},
		{"between entries", entryFor(4).Pos - 1, 4, 2},
		{"into last file", entryFor(9).Pos, 9, 1},
		{"everything", 1 << 40, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openTest(t, dir)
			appendN(t, q, 10)
			if err := q.SetMinLogPos(tt.pos); err != nil {
				t.Fatal(err)
			}
			assertBounds(t, q, tt.wantMin, 10)
			assertEntries(t, q, tt.wantMin, 10)
			if got := len(segmentFiles(t, dir)); got != tt.wantFiles {
				t.Fatalf("%d files, want %d", got, tt.wantFiles)
			}
			// A lower position never moves MinOffset back.
			if err := q.SetMinLogPos(0); err != nil {
				t.Fatal(err)
			}
			assertBounds(t, q, tt.wantMin, 10)
			q.Close()
			q = openTest(t, dir)
			if q.MaxOffset() != 10 {
				t.Fatalf("max offset after reopen = %d, want 10", q.MaxOffset())
			}
		})
	}
}

func TestSetMinLogPosKeepsFullLastFile(t *testing.T) {
	dir := t.TempDir()
	q := openTest(t, dir)
	appendN(t, q, 8) // two full files
	if err := q.SetMinLogPos(1 << 40); err != nil {
		t.Fatal(err)
	}
	assertBounds(t, q, 8, 8)
	if got := segmentFiles(t, dir); !slices.Equal(got, []string{segmentName(4)}) {
		t.Fatalf("files %v", got)
	}
	q.Close()
	q = openTest(t, dir)
	if q.MaxOffset() != 8 {
		t.Fatalf("max offset %d, want 8", q.MaxOffset())
	}
	appendN(t, q, 1)
	assertEntries(t, q, 8, 9)
}

func TestSearch(t *testing.T) {
	q := openTest(t, t.TempDir())
	appendN(t, q, 10)
	tests := []struct {
		name string
		pos  int64 // predicate: entry.Pos >= pos
		want int64
	}{
		{"first", 0, 0},
		{"exact", entryFor(6).Pos, 6},
		{"between", entryFor(6).Pos - 50, 6},
		{"last", entryFor(9).Pos, 9},
		{"none", 1 << 40, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.Search(func(e Entry) (bool, error) { return e.Pos >= tt.pos, nil })
			if err != nil || got != tt.want {
				t.Fatalf("Search = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := q.Search(func(Entry) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestSearchRespectsMinOffset(t *testing.T) {
	q := openTest(t, t.TempDir())
	appendN(t, q, 10)
	if err := q.SetMinLogPos(entryFor(5).Pos); err != nil {
		t.Fatal(err)
	}
	got, err := q.Search(func(Entry) (bool, error) { return true, nil })
	if err != nil || got != 5 {
		t.Fatalf("Search = %d, %v; want 5", got, err)
	}
}

func TestCorruption(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"short file", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, segmentName(4)), 7)
		}},
		{"long file", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, segmentName(0)), testPerFile*EntrySize+1)
		}},
		{"gap between files", func(t *testing.T, dir string) {
			os.Rename(filepath.Join(dir, segmentName(4)), filepath.Join(dir, segmentName(12)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openTest(t, dir)
			appendN(t, q, 10)
			q.Close()
			tt.setup(t, dir)
			_, err := Open(dir, Options{EntriesPerFile: testPerFile})
			if !errors.Is(err, ErrCorruption) {
				t.Fatalf("err = %v, want ErrCorruption", err)
			}
		})
	}
}

func TestWrongEntriesPerFileIsCorruption(t *testing.T) {
	dir := t.TempDir()
	q := openTest(t, dir)
	appendN(t, q, 3)
	q.Close()
	if _, err := Open(dir, Options{EntriesPerFile: 8}); !errors.Is(err, ErrCorruption) {
		t.Fatalf("err = %v", err)
	}
}

func TestRecoverTornTail(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(q *Queue) // applied to the mapping before the crash
		wantMax int64
	}{
		{"hole before later entries", func(q *Queue) {
			clear(q.segs[2].slot(9))
		}, 9},
		{"torn slot", func(q *Queue) {
			s := q.segs[2].slot(9)
			clear(s[8:]) // position persisted, size and tag lost
		}, 9},
		{"position goes back", func(q *Queue) {
			encodeEntry(q.segs[2].slot(9), Entry{Pos: 1, Size: 1})
		}, 9},
		{"last file empty, previous torn", func(q *Queue) {
			clear(q.segs[2].slot(8))
			clear(q.segs[2].slot(9))
			clear(q.segs[1].slot(6))
		}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openTest(t, dir)
			appendN(t, q, 11)
			tt.damage(q)
			q.Close()
			q = openTest(t, dir)
			assertBounds(t, q, 0, tt.wantMax)
			assertEntries(t, q, 0, tt.wantMax)
			appendN(t, q, 3)
			q.Close()
			q = openTest(t, dir)
			assertBounds(t, q, 0, tt.wantMax+3)
			assertEntries(t, q, 0, tt.wantMax+3)
		})
	}
}

func TestLeftoverTempFileIsRemoved(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, segmentName(0)+tmpSuffix)
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	q := openTest(t, dir)
	appendN(t, q, 1)
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover still there: %v", err)
	}
}

func TestClose(t *testing.T) {
	q := openTest(t, t.TempDir())
	appendN(t, q, 2)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	calls := map[string]func() error{
		"Append":          func() error { return q.Append(2, entryFor(2)) },
		"Get":             func() error { _, err := q.Get(0); return err },
		"Range":           func() error { _, err := q.Range(0, 1, nil); return err },
		"Search":          func() error { _, err := q.Search(func(Entry) (bool, error) { return true, nil }); return err },
		"TruncateFromPos": func() error { return q.TruncateFromPos(0) },
		"TruncateTo":      func() error { return q.TruncateTo(0) },
		"Reset":           func() error { return q.Reset(0) },
		"SetMinLogPos":    func() error { return q.SetMinLogPos(0) },
		"Flush":           q.Flush,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
	}
}

func TestFlush(t *testing.T) {
	dir := t.TempDir()
	q := openTest(t, dir)
	for i := range 9 {
		appendN(t, q, 1)
		if i%2 == 0 {
			if err := q.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := q.TruncateTo(5); err != nil {
		t.Fatal(err)
	}
	appendN(t, q, 1)
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	// Files are read back through fresh mappings, as after a restart.
	q2 := openTest(t, dir)
	assertEntries(t, q2, 0, 6)
}

func TestOptions(t *testing.T) {
	if DefaultOptions().EntriesPerFile != 300_000 {
		t.Fatal("default entries per file")
	}
	for _, n := range []int{-1, maxEntriesPerFile + 1} {
		if _, err := Open(t.TempDir(), Options{EntriesPerFile: n}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("EntriesPerFile %d: err = %v", n, err)
		}
	}
}

func TestTagHash(t *testing.T) {
	if TagHash("") != 0 {
		t.Fatal("empty tag must hash to 0")
	}
	// FNV-1a 64 of "a", fixed so that stored hashes stay meaningful.
	if got := TagHash("a"); uint64(got) != 0xaf63dc4c8601ec8c {
		t.Fatalf("TagHash(a) = %x", uint64(got))
	}
	if TagHash("TagA") == TagHash("TagB") {
		t.Fatal("collision")
	}
}
