package commitlog

import (
	"bytes"
	"errors"
	"os"
	"sync/atomic"
	"testing"
)

func TestSegmentRollAndScanAcrossSegments(t *testing.T) {
	opts := testOpts(t)
	opts.SegmentSize = 4096
	l := openLog(t, opts)
	pos, sizes := appendRange(t, l, 0, 100)
	// A batch that rolls in the middle.
	batch := make([][]byte, 50)
	for i := range batch {
		batch[i] = testRec(100 + i)
	}
	res, err := l.Append(batch)
	if err != nil {
		t.Fatal(err)
	}
	pos, sizes = append(pos, res.Positions...), append(sizes, res.Sizes...)

	bases := segFiles(t, opts.Dir)
	if len(bases) < 5 || l.Metrics().Segments != len(bases) {
		t.Fatalf("%d segment files, Metrics says %d", len(bases), l.Metrics().Segments)
	}
	for i, b := range bases {
		fi, err := os.Stat(segPath(opts.Dir, b))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > opts.SegmentSize {
			t.Fatalf("segment %d is %d bytes, over SegmentSize", b, fi.Size())
		}
		if i+1 < len(bases) && b+fi.Size() != bases[i+1] {
			t.Fatalf("segment %d ends at %d but the next starts at %d", b, b+fi.Size(), bases[i+1])
		}
	}
	for i := range pos {
		m, err := l.ReadMessage(pos[i], int(sizes[i]))
		if err != nil || m.QueueOffset != int64(i) {
			t.Fatalf("record %d: offset %d, %v", i, m.QueueOffset, err)
		}
	}
	wantOffsets(t, scanAll(t, l), 0, 150)

	// In small steps, resuming where each Scan stopped.
	var got []int64
	for p := int64(0); p < l.WrittenPos(); {
		next, err := l.Scan(p, l.WrittenPos(), 700, func(_ int64, rec []byte) error {
			m, _, err := DecodeRecord(rec)
			got = append(got, m.QueueOffset)
			return err
		})
		if err != nil || next <= p {
			t.Fatalf("Scan(%d) = %d, %v", p, next, err)
		}
		p = next
	}
	wantOffsets(t, got, 0, 150)
	l = reopen(t, l, opts)
	wantOffsets(t, scanAll(t, l), 0, 150)
}

func TestScanLimits(t *testing.T) {
	opts := testOpts(t)
	opts.SegmentSize = 2048
	l := openLog(t, opts)
	pos, sizes := appendRange(t, l, 0, 40)
	count := func(from, limit int64, maxBytes int) (int, int64, error) {
		n := 0
		next, err := l.Scan(from, limit, maxBytes, func(int64, []byte) error { n++; return nil })
		return n, next, err
	}
	t.Run("limit at a record", func(t *testing.T) {
		n, next, err := count(0, pos[25], 0)
		if err != nil || n != 25 || next != pos[25] {
			t.Fatalf("visited %d, next %d, %v; want 25, %d", n, next, err, pos[25])
		}
	})
	t.Run("limit inside a record", func(t *testing.T) {
		n, next, err := count(0, pos[25]+5, 0)
		if err != nil || n != 25 || next != pos[25] {
			t.Fatalf("visited %d, next %d, %v", n, next, err)
		}
	})
	t.Run("maxBytes smaller than one record", func(t *testing.T) {
		n, next, err := count(pos[3], l.WrittenPos(), 1)
		if err != nil || n != 1 || next != pos[4] {
			t.Fatalf("visited %d, next %d, %v", n, next, err)
		}
	})
	t.Run("maxBytes exact", func(t *testing.T) {
		n, _, err := count(pos[0], l.WrittenPos(), int(sizes[0]+sizes[1]))
		if err != nil || n != 2 {
			t.Fatalf("visited %d, %v", n, err)
		}
	})
	t.Run("empty range", func(t *testing.T) {
		n, next, err := count(l.WrittenPos(), l.WrittenPos()+100, 0)
		if err != nil || n != 0 || next != l.WrittenPos() {
			t.Fatalf("visited %d, next %d, %v", n, next, err)
		}
	})
	t.Run("below MinPos", func(t *testing.T) {
		if _, _, err := count(-5, l.WrittenPos(), 0); !errors.Is(err, ErrOutOfRange) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop")
		next, err := l.Scan(0, l.WrittenPos(), 0, func(p int64, _ []byte) error {
			if p == pos[7] {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || next != pos[7] {
			t.Fatalf("next %d, %v; want %d, stop", next, err, pos[7])
		}
	})
}

func TestLargeRecordsAndBatches(t *testing.T) {
	l := openLog(t, testOpts(t))
	var batch [][]byte
	for i := 0; i < 3000; i++ {
		m := testMsg(i)
		if i%500 == 0 {
			m.Body = bytes.Repeat([]byte{byte(i)}, 300<<10) // written in place
		}
		batch = append(batch, AppendRecord(nil, m))
	}
	res, err := l.Append(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		raw, err := l.ReadAt(res.Positions[i], int(res.Sizes[i]))
		if err != nil || !bytes.Equal(raw, batch[i]) {
			t.Fatalf("record %d read back differently (%v)", i, err)
		}
	}
	wantOffsets(t, scanAll(t, l), 0, 3000)
}

func TestCorruptMiddleRecord(t *testing.T) {
	opts := testOpts(t)
	var hookPos atomic.Int64
	hookPos.Store(-1)
	opts.Hooks.OnCorruption = func(pos int64, err error) {
		if !errors.Is(err, ErrCorruption) {
			t.Errorf("OnCorruption got %v", err)
		}
		hookPos.Store(pos)
	}
	l := openLog(t, opts)
	pos, sizes := appendRange(t, l, 0, 20)
	flipByte(t, segPath(opts.Dir, 0), pos[10]+int64(sizes[10])-5)

	if _, err := l.ReadMessage(pos[10], int(sizes[10])); !errors.Is(err, ErrCorruption) {
		t.Fatalf("ReadMessage err = %v, want ErrCorruption", err)
	}
	if hookPos.Load() != pos[10] {
		t.Fatalf("OnCorruption pos = %d, want %d", hookPos.Load(), pos[10])
	}
	if _, err := l.ReadMessage(pos[9], int(sizes[9])); err != nil {
		t.Fatalf("neighbour record: %v", err)
	}
	visited := 0
	next, err := l.Scan(0, l.WrittenPos(), 0, func(int64, []byte) error { visited++; return nil })
	if !errors.Is(err, ErrCorruption) || next != pos[10] || visited != 10 {
		t.Fatalf("Scan = next %d, %v after %d records; want %d, ErrCorruption, 10", next, err, visited, pos[10])
	}
	if got := l.Metrics().CorruptRecords; got != 2 {
		t.Fatalf("CorruptRecords = %d, want 2", got)
	}
}

func TestReadMessageSizeMismatch(t *testing.T) {
	l := openLog(t, testOpts(t))
	pos, sizes := appendRange(t, l, 0, 3)
	// An index entry with the wrong size must not yield a message.
	for _, size := range []int{int(sizes[0]) - 1, int(sizes[0]) + int(sizes[1])} {
		if _, err := l.ReadMessage(pos[0], size); !errors.Is(err, ErrCorruption) {
			t.Fatalf("size %d: err = %v, want ErrCorruption", size, err)
		}
	}
	if _, err := l.ReadMessage(pos[0]+3, int(sizes[0])); !errors.Is(err, ErrCorruption) {
		t.Fatalf("misaligned position: err = %v", err)
	}
}

func TestReadAtCrossingSegments(t *testing.T) {
	opts := testOpts(t)
	opts.SegmentSize = MinSegmentSize
	l := openLog(t, opts)
	appendRange(t, l, 0, 20)
	bases := segFiles(t, opts.Dir)
	if _, err := l.ReadAt(bases[1]-4, 8); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("read across a segment boundary: %v", err)
	}
}
