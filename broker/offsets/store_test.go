package offsets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoundTripThroughReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "offsets.json")
	s := openTest(t, path)
	s.Commit("g2", "orders", 1, 7)
	s.Commit("g1", "orders", 3, 42)
	s.Commit("g1", "orders", 0, 0)
	s.Commit("g1", "audit", 0, 1<<40)
	s.Commit("g1", "orders", 3, 40) // moves back: a reset
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	want := []Entry{
		{"g1", "audit", 0, 1 << 40},
		{"g1", "orders", 0, 0},
		{"g1", "orders", 3, 40},
		{"g2", "orders", 1, 7},
	}
	if got := s.Snapshot(); !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestGet(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "offsets.json"))
	s.Commit("g", "t", 2, 5)
	tests := []struct {
		group, topic string
		queue        uint32
		want         int64
		wantOK       bool
	}{
		{"g", "t", 2, 5, true},
		{"g", "t", 1, 0, false},
		{"g", "other", 2, 0, false},
		{"other", "t", 2, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%d", tt.group, tt.topic, tt.queue), func(t *testing.T) {
			got, ok := s.Get(tt.group, tt.topic, tt.queue)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("Get = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offsets.json")
	s := openTest(t, path)
	for _, g := range []string{"g1", "g2"} {
		for _, topic := range []string{"a", "b"} {
			s.Commit(g, topic, 0, 1)
		}
	}
	s.DeleteTopic("a")
	s.DeleteGroup("g2")
	s.DeleteTopic("missing")
	want := []Entry{{"g1", "b", 0, 1}}
	if got := s.Snapshot(); !slices.Equal(got, want) {
		t.Fatalf("got %+v", got)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := openTest(t, path).Snapshot(); !slices.Equal(got, want) {
		t.Fatalf("after reopen %+v", got)
	}
}

func TestFlushOnlyWhenDirty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offsets.json")
	s := openTest(t, path)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("clean store wrote a file: %v", err)
	}
	s.Commit("g", "t", 0, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	// The same value again is not a change.
	s.Commit("g", "t", 0, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Fatal("file rewritten without a change")
	}
}

func TestCorruptFile(t *testing.T) {
	tests := []struct {
		name, content string
	}{
		{"empty", ""},
		{"not json", "garbage"},
		{"truncated", `{"version": 1, "offsets": [{"group": "g"`},
		{"no version", `{"offsets": []}`},
		{"future version", `{"version": 2, "offsets": []}`},
		{"unknown field", `{"version": 1, "offsets": [], "epoch": 3}`},
		{"trailing data", `{"version": 1, "offsets": []} {}`},
		{"queue too big", `{"version": 1, "offsets": [{"group": "g", "topic": "t", "queue": 4294967296, "offset": 1}]}`},
		{"duplicate", `{"version": 1, "offsets": [{"group": "g", "topic": "t", "queue": 0, "offset": 1}, {"group": "g", "topic": "t", "queue": 0, "offset": 2}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "offsets.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			// The evidence is kept.
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Fatal("corrupt file was modified")
			}
		})
	}
}

func TestEmptyListIsValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offsets.json")
	for _, content := range []string{`{"version": 1, "offsets": []}`, `{"version": 1}`, `{"version": 1, "offsets": null}`} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path)
		if err != nil {
			t.Fatalf("%s: %v", content, err)
		}
		if len(s.Snapshot()) != 0 {
			t.Fatalf("%s: not empty", content)
		}
		s.Close()
	}
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offsets.json")
	s := openTest(t, path)
	s.Commit("g", "t", 0, 9)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("flush after close: %v", err)
	}
	if got, _ := openTest(t, path).Get("g", "t", 0); got != 9 {
		t.Fatalf("close did not flush: %d", got)
	}
}

func TestLeftoverTempFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "offsets.json")
	leftover := filepath.Join(dir, "offsets.json.tmp-123")
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, path)
	s.Commit("g", "t", 0, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover kept: %v", err)
	}
}

func TestConcurrentCommitGetFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offsets.json")
	s := openTest(t, path)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := fmt.Sprint("g", w)
			for i := range int64(500) {
				s.Commit(group, "t", uint32(i%4), i)
				if got, ok := s.Get(group, "t", uint32(i%4)); !ok || got != i {
					t.Errorf("%s: read %d, %v after committing %d", group, got, ok, i)
					return
				}
				if i%50 == 0 {
					s.Snapshot()
					if err := s.Flush(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			s.DeleteGroup("nobody")
			if err := s.Flush(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := openTest(t, path).Snapshot()
	if len(got) != 16 {
		t.Fatalf("%d entries after reopen, want 16", len(got))
	}
	for _, e := range got {
		if e.Offset < 496 {
			t.Fatalf("stale offset persisted: %+v", e)
		}
	}
}
