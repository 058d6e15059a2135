package commitlog

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAppendAndRead(t *testing.T) {
	l := openLog(t, testOpts(t))
	batch := [][]byte{testRec(0), testRec(1), testRec(2)}
	res, err := l.Append(batch)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for i, rec := range batch {
		if res.Positions[i] != want || int(res.Sizes[i]) != len(rec) {
			t.Fatalf("record %d at %d size %d, want %d size %d", i, res.Positions[i], res.Sizes[i], want, len(rec))
		}
		want += int64(len(rec))
	}
	if res.End != want || l.WrittenPos() != want {
		t.Fatalf("End %d, WrittenPos %d; want %d", res.End, l.WrittenPos(), want)
	}
	for i := range batch {
		m, err := l.ReadMessage(res.Positions[i], int(res.Sizes[i]))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, *testMsg(i)) {
			t.Fatalf("message %d: got %+v", i, m)
		}
	}
	raw, err := l.ReadAt(res.Positions[1], int(res.Sizes[1]))
	if err != nil || string(raw) != string(batch[1]) {
		t.Fatalf("ReadAt = %v; bytes equal %v", err, string(raw) == string(batch[1]))
	}
	if got := l.Metrics(); got.Appends != 3 || got.AppendedBytes != uint64(want) || got.Segments != 1 {
		t.Fatalf("metrics %+v", got)
	}
}

func TestReadOutOfRange(t *testing.T) {
	l := openLog(t, testOpts(t))
	pos, sizes := appendRange(t, l, 0, 2)
	cases := []struct {
		name string
		pos  int64
		size int
	}{
		{"negative", -1, 10},
		{"past written", pos[1], int(sizes[1]) + 1},
		{"beyond", l.WrittenPos() + 100, 1},
		{"negative size", 0, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.ReadAt(tc.pos, tc.size); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("ReadAt err = %v, want ErrOutOfRange", err)
			}
			if _, err := l.ReadMessage(tc.pos, tc.size); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("ReadMessage err = %v, want ErrOutOfRange", err)
			}
		})
	}
}

func TestAppendRejectsBadBatches(t *testing.T) {
	opts := testOpts(t)
	opts.MaxRecordSize = 1024
	l := openLog(t, opts)
	big := AppendRecord(nil, &Message{Body: make([]byte, 2000)})
	bad := testRec(1)
	bad = bad[:len(bad)-1]
	wrongVersion := testRec(2)
	wrongVersion[8] = 7
	cases := []struct {
		name  string
		batch [][]byte
		want  error
	}{
		{"too large", [][]byte{testRec(0), big}, ErrRecordTooLarge},
		{"length mismatch", [][]byte{testRec(0), bad}, ErrBadRecord},
		{"too short", [][]byte{{1, 2, 3}}, ErrBadRecord},
		{"wrong version", [][]byte{wrongVersion}, ErrBadRecord},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Append(tc.batch); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if l.WrittenPos() != 0 {
				t.Fatalf("a rejected batch moved WrittenPos to %d", l.WrittenPos())
			}
		})
	}
	if res, err := l.Append(nil); err != nil || res.End != 0 {
		t.Fatalf("empty batch: %+v, %v", res, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(o *Options)
		ok   bool
	}{
		{"defaults", func(o *Options) {}, true},
		{"no dir", func(o *Options) { o.Dir = "" }, false},
		{"tiny segments", func(o *Options) { o.SegmentSize = 100 }, false},
		{"bad mode", func(o *Options) { o.FlushMode = 9 }, false},
		{"negative interval", func(o *Options) { o.FlushInterval = -time.Second }, false},
		{"record too big", func(o *Options) { o.MaxRecordSize = MaxFrameSize + 1 }, false},
		{"record too small", func(o *Options) { o.MaxRecordSize = 10 }, false},
		{"negative recover", func(o *Options) { o.RecoverFrom = -1 }, false},
		{"zero values", func(o *Options) { *o = Options{Dir: "x"} }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Dir = "x"
			tc.edit(&o)
			err := o.Validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadOptions)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if _, err := Open(Options{}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("Open(no dir) err = %v", err)
	}
}

func TestCloseTwiceAndUseAfterClose(t *testing.T) {
	l, err := Open(testOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	pos, sizes := appendRange(t, l, 0, 3)
	changed := l.Changed()
	if err := l.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Close did not wake a Changed waiter")
	}
	if l.DurablePos() != l.WrittenPos() {
		t.Fatalf("Close left DurablePos %d < WrittenPos %d", l.DurablePos(), l.WrittenPos())
	}
	if _, err := l.Append([][]byte{testRec(9)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := l.ReadMessage(pos[0], int(sizes[0])); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadMessage after Close: %v", err)
	}
	if _, err := l.Scan(0, 1<<40, 0, func(int64, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scan after Close: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if err := l.Truncate(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Truncate after Close: %v", err)
	}
	if _, err := l.Retain(0, 1, time.Now()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Retain after Close: %v", err)
	}
	select {
	case <-l.Changed():
	default:
		t.Fatal("Changed after Close is not closed")
	}
}

func TestChangedFiresOnAppend(t *testing.T) {
	l := openLog(t, testOpts(t))
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before anything happened")
	default:
	}
	appendRange(t, l, 0, 1)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed after Append")
	}
	if l.Changed() == ch {
		t.Fatal("Changed returned the closed channel again")
	}
}

func TestReopenKeepsRecords(t *testing.T) {
	opts := testOpts(t)
	l := openLog(t, opts)
	appendRange(t, l, 0, 50)
	end := l.WrittenPos()
	l = reopen(t, l, opts)
	if l.WrittenPos() != end || l.DurablePos() != end {
		t.Fatalf("after reopen WrittenPos %d DurablePos %d, want %d", l.WrittenPos(), l.DurablePos(), end)
	}
	appendRange(t, l, 50, 60)
	wantOffsets(t, scanAll(t, l), 0, 60)
	if m := l.Metrics(); m.TruncatedTails != 0 {
		t.Fatalf("clean reopen counted %d truncated tails", m.TruncatedTails)
	}
}

func TestFlushModeText(t *testing.T) {
	for _, m := range []FlushMode{FlushAsync, FlushSync} {
		b, err := m.MarshalText()
		var back FlushMode
		if err != nil || back.UnmarshalText(b) != nil || back != m {
			t.Fatalf("%v: %q, %v, back %v", m, b, err, back)
		}
	}
	var m FlushMode
	if err := m.UnmarshalText([]byte("fast")); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("UnmarshalText(fast) = %v", err)
	}
	if _, err := FlushMode(7).MarshalText(); err == nil || FlushMode(7).String() != "FlushMode(7)" {
		t.Fatal("unknown mode marshalled")
	}
}
