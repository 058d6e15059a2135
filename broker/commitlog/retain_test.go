package commitlog

import (
	"errors"
	"testing"
	"time"
)

// timedLog writes n records into 1 KiB segments, record i stored at
// epoch+i seconds.
func timedLog(t *testing.T, n int, epoch time.Time) (*Log, Options, []int64, []int32) {
	t.Helper()
	opts := testOpts(t)
	opts.SegmentSize = MinSegmentSize
	l := openLog(t, opts)
	var pos []int64
	var sizes []int32
	for i := 0; i < n; i++ {
		m := testMsg(i)
		m.StoreTime = epoch.Add(time.Duration(i) * time.Second).UnixNano()
		res, err := l.Append([][]byte{AppendRecord(nil, m)})
		if err != nil {
			t.Fatal(err)
		}
		pos, sizes = append(pos, res.Positions[0]), append(sizes, res.Sizes[0])
	}
	return l, opts, pos, sizes
}

func TestRetainByAge(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0)
	l, opts, pos, sizes := timedLog(t, 60, epoch)
	bases := segFiles(t, opts.Dir)
	// Keep what was stored in the last 20 seconds before record 59.
	now := epoch.Add(59 * time.Second)
	deleted, err := l.Retain(20*time.Second, 0, now)
	if err != nil || deleted == 0 {
		t.Fatalf("Retain = %d, %v", deleted, err)
	}
	cutoff := now.Add(-20 * time.Second).UnixNano()
	minPos := l.MinPos()
	if minPos != bases[deleted] {
		t.Fatalf("MinPos %d, want base %d", minPos, bases[deleted])
	}
	for i := range pos {
		stored := epoch.Add(time.Duration(i) * time.Second).UnixNano()
		_, err := l.ReadMessage(pos[i], int(sizes[i]))
		switch {
		case pos[i] < minPos && !errors.Is(err, ErrOutOfRange):
			t.Fatalf("deleted record %d: err = %v", i, err)
		case pos[i] >= minPos && err != nil:
			t.Fatalf("kept record %d: %v", i, err)
		case stored >= cutoff && pos[i] < minPos:
			t.Fatalf("record %d is younger than maxAge but was deleted", i)
		}
	}
	if got := segFiles(t, opts.Dir); len(got) != len(bases)-deleted || got[0] != minPos {
		t.Fatalf("files %v after deleting %d of %v", got, deleted, bases)
	}
	l = reopen(t, l, opts)
	if l.MinPos() != minPos {
		t.Fatalf("MinPos after reopen %d, want %d", l.MinPos(), minPos)
	}
	first := firstIndexAtOrAfter(pos, minPos)
	wantOffsets(t, scanAll(t, l), first, 60)
}

func TestRetainBySize(t *testing.T) {
	l, opts, _, _ := timedLog(t, 60, time.Now())
	bases := segFiles(t, opts.Dir)
	if _, err := l.Retain(0, 3000, time.Now()); err != nil {
		t.Fatal(err)
	}
	if m := l.Metrics(); m.DiskBytes > 3000 || m.DiskBytes+MinSegmentSize <= 3000 {
		t.Fatalf("DiskBytes %d after retaining 3000", m.DiskBytes)
	}
	if got := segFiles(t, opts.Dir); got[len(got)-1] != bases[len(bases)-1] {
		t.Fatalf("active segment deleted: %v", got)
	}
}

func TestRetainNeverDeletesActiveSegment(t *testing.T) {
	l, opts, _, _ := timedLog(t, 60, time.Unix(0, 1))
	bases := segFiles(t, opts.Dir)
	deleted, err := l.Retain(time.Nanosecond, 1, time.Now().Add(time.Hour))
	if err != nil || deleted != len(bases)-1 {
		t.Fatalf("Retain = %d, %v; want %d", deleted, err, len(bases)-1)
	}
	if got := segFiles(t, opts.Dir); len(got) != 1 || got[0] != bases[len(bases)-1] || l.MinPos() != got[0] {
		t.Fatalf("files %v, MinPos %d", got, l.MinPos())
	}
	appendRange(t, l, 60, 70)
	got := scanAll(t, l)
	wantOffsets(t, got[len(got)-10:], 60, 70)
	if n, err := l.Retain(0, 0, time.Now()); n != 0 || err != nil {
		t.Fatalf("Retain with no limits = %d, %v", n, err)
	}
}

func TestRetainAgeOfReopenedSegments(t *testing.T) {
	epoch := time.Unix(1_700_000_000, 0)
	l, opts, _, _ := timedLog(t, 60, epoch)
	opts.RecoverFrom = 1 << 40 // trust all but the last segment: ages come from end markers
	l = reopen(t, l, opts)
	if n, err := l.Retain(time.Hour, 0, epoch.Add(30*time.Minute)); n != 0 || err != nil {
		t.Fatalf("Retain deleted %d young segments (%v)", n, err)
	}
	if n, err := l.Retain(time.Hour, 0, epoch.Add(3*time.Hour)); n == 0 || err != nil {
		t.Fatalf("Retain deleted %d old segments (%v)", n, err)
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		name string
		at   func(pos []int64, bases []int64) int64
	}{
		{"inside the active segment", func(pos, bases []int64) int64 { return pos[len(pos)-2] }},
		{"in an earlier segment", func(pos, bases []int64) int64 { return pos[firstIndexAtOrAfter(pos, bases[1])+1] }},
		{"at a segment base", func(pos, bases []int64) int64 { return bases[2] }},
		{"at the start", func(pos, bases []int64) int64 { return 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, opts, pos, _ := timedLog(t, 60, time.Now())
			bases := segFiles(t, opts.Dir)
			at := tc.at(pos, bases)
			if err := l.Truncate(at); err != nil {
				t.Fatalf("Truncate(%d): %v", at, err)
			}
			kept := firstIndexAtOrAfter(pos, at)
			if l.WrittenPos() != at || l.DurablePos() > at {
				t.Fatalf("WrittenPos %d DurablePos %d, want %d", l.WrittenPos(), l.DurablePos(), at)
			}
			if got := segFiles(t, opts.Dir); got[len(got)-1] > at {
				t.Fatalf("segments %v remain past %d", got, at)
			}
			if _, err := l.ReadAt(at, 10); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("read past the cut: %v", err)
			}
			appendRange(t, l, kept, 70)
			wantOffsets(t, scanAll(t, l), 0, 70)
			if err := l.Sync(); err != nil || l.DurablePos() != l.WrittenPos() {
				t.Fatalf("Sync: %v, DurablePos %d", err, l.DurablePos())
			}
			l = reopen(t, l, opts)
			wantOffsets(t, scanAll(t, l), 0, 70)
		})
	}
}

func TestTruncateRejects(t *testing.T) {
	l, _, pos, _ := timedLog(t, 20, time.Now())
	end := l.WrittenPos()
	for _, at := range []int64{pos[5] + 3, end + 1, -1} {
		if err := l.Truncate(at); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("Truncate(%d) err = %v, want ErrOutOfRange", at, err)
		}
	}
	if err := l.Truncate(end); err != nil || l.WrittenPos() != end {
		t.Fatalf("Truncate(WrittenPos) = %v", err)
	}
	if l.Metrics().CorruptRecords != 0 {
		t.Fatal("a refused truncation point was counted as corruption")
	}
}
