package offsets

import (
	"path/filepath"
	"testing"
	"time"
)

// clockStore is a store whose clock the test moves.
func clockStore(t *testing.T) (*Store, *time.Time) {
	t.Helper()
	s := openTest(t, filepath.Join(t.TempDir(), "offsets.json"))
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	return s, &now
}

func TestPassedAt(t *testing.T) {
	s, now := clockStore(t)
	at := func(sec int) { *now = time.Unix(1000+int64(sec), 0) }
	s.Commit("g", "t", 0, 10) // where the group starts: nothing before is known
	at(1)
	s.Commit("g", "t", 0, 12)
	at(2)
	s.Commit("g", "t", 0, 15)
	at(3)
	s.Raise("g", "t", 0, 20)

	sec := func(n int) time.Time { return time.Unix(1000+int64(n), 0) }
	tests := []struct {
		offset int64
		ok     bool
		want   Passed
	}{
		{8, true, Passed{}}, // before the group's start: passed, time unknown
		{9, true, Passed{}},
		{10, true, Passed{After: sec(0), By: sec(1)}},
		{11, true, Passed{After: sec(0), By: sec(1)}},
		{12, true, Passed{After: sec(1), By: sec(2)}},
		{14, true, Passed{After: sec(1), By: sec(2)}},
		{15, true, Passed{After: sec(2), By: sec(3), Synced: true}},
		{19, true, Passed{After: sec(2), By: sec(3), Synced: true}},
		{20, false, Passed{}},
	}
	for _, tt := range tests {
		got, ok := s.PassedAt("g", "t", 0, tt.offset)
		if ok != tt.ok || !got.After.Equal(tt.want.After) || !got.By.Equal(tt.want.By) || got.Synced != tt.want.Synced {
			t.Errorf("PassedAt(%d) = %+v, %v; want %+v, %v", tt.offset, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := s.PassedAt("other", "t", 0, 10); ok {
		t.Error("a group without commits has passed a message")
	}
	s.Raise("synced", "t", 0, 5) // first seen through another DC
	if p, ok := s.PassedAt("synced", "t", 0, 4); !ok || !p.Synced || !p.By.IsZero() {
		t.Errorf("offset first raised from another DC: %+v %v", p, ok)
	}
}

func TestPassedAtAfterReset(t *testing.T) {
	s, now := clockStore(t)
	s.Commit("g", "t", 0, 0)
	*now = now.Add(time.Second)
	s.Commit("g", "t", 0, 10)
	*now = now.Add(time.Second)
	s.Commit("g", "t", 0, 4) // reset back
	if _, ok := s.PassedAt("g", "t", 0, 5); ok {
		t.Fatal("a message after the reset offset still reads as passed")
	}
	p, ok := s.PassedAt("g", "t", 0, 3)
	if !ok || !p.By.Equal(time.Unix(1001, 0)) {
		t.Fatalf("message before the reset offset: %+v %v, want passed by the first commit past it", p, ok)
	}
	*now = now.Add(time.Second)
	s.Commit("g", "t", 0, 8)
	if p, ok := s.PassedAt("g", "t", 0, 5); !ok || !p.By.Equal(time.Unix(1003, 0)) || !p.After.Equal(time.Unix(1001, 0)) {
		t.Fatalf("message passed again after the reset: %+v %v", p, ok)
	}
}

func TestPassedAtForgetsDeleted(t *testing.T) {
	s, now := clockStore(t)
	s.Commit("g", "t", 0, 0)
	*now = now.Add(time.Second)
	s.Commit("g", "t", 0, 5)
	s.DeleteGroup("g")
	s.Commit("g", "t", 0, 7) // starts again: nothing before is known
	if p, ok := s.PassedAt("g", "t", 0, 2); !ok || !p.By.IsZero() {
		t.Fatalf("history survived DeleteGroup: %+v", p)
	}
}

// TestHistoryBounded: a long run of commits keeps at most historyMarks
// marks, the newest precise and every answer a true bound.
func TestHistoryBounded(t *testing.T) {
	s, now := clockStore(t)
	s.Commit("g", "t", 0, 0)
	start := *now
	const n = 10000
	for i := 1; i <= n; i++ {
		*now = start.Add(time.Duration(i) * time.Second)
		s.Commit("g", "t", 0, int64(i)) // message i-1 passed at second i
	}
	if got := len(s.hist[key{"g", "t", 0}].marks); got > historyMarks {
		t.Fatalf("%d marks kept, at most %d expected", got, historyMarks)
	}
	for _, off := range []int64{0, 1, 500, 5000, n - 10, n - 1} {
		p, ok := s.PassedAt("g", "t", 0, off)
		truth := start.Add(time.Duration(off+1) * time.Second)
		if !ok || p.By.Before(truth) || !p.After.Before(truth) {
			t.Fatalf("offset %d passed at %v: got (%v, %v] %v", off, truth, p.After, p.By, ok)
		}
	}
	if p, _ := s.PassedAt("g", "t", 0, n-1); p.By.Sub(p.After) > time.Second {
		t.Fatalf("newest message bounded by (%v, %v]: the newest interval should be precise", p.After, p.By)
	}
}

func TestHistoryCoalesces(t *testing.T) {
	s, now := clockStore(t)
	s.Commit("g", "t", 0, 0)
	for i := 1; i <= 100; i++ {
		*now = now.Add(time.Millisecond)
		s.Commit("g", "t", 0, int64(i))
	}
	h := s.hist[key{"g", "t", 0}]
	if len(h.marks) > 100/int(coalesceWindow/time.Millisecond)+2 {
		t.Fatalf("%d marks for 100 commits 1ms apart", len(h.marks))
	}
	p, ok := s.PassedAt("g", "t", 0, 50)
	if !ok || p.By.Sub(p.After) > coalesceWindow {
		t.Fatalf("offset 50: (%v, %v] %v", p.After, p.By, ok)
	}
}

func TestQueue(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "offsets.json"))
	s.Commit("b", "t", 1, 3)
	s.Commit("a", "t", 1, 5)
	s.Commit("a", "t", 0, 9)
	s.Commit("a", "u", 1, 9)
	got := s.Queue("t", 1)
	if len(got) != 2 || got[0] != (Entry{"a", "t", 1, 5}) || got[1] != (Entry{"b", "t", 1, 3}) {
		t.Fatalf("Queue(t, 1) = %+v", got)
	}
}
