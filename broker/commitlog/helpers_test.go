package commitlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testMsg returns a distinct, fully populated message for i.
func testMsg(i int) *Message {
	return &Message{
		Topic:       "orders",
		QueueID:     uint32(i % 4),
		QueueOffset: int64(i),
		Epoch:       3,
		Flags:       FlagReplicated,
		BornTime:    int64(1_700_000_000_000_000_000 + i),
		StoreTime:   int64(1_700_000_000_000_000_100 + i),
		BornDC:      "idc-a",
		ID:          fmt.Sprintf("id-%06d", i),
		Keys:        []string{fmt.Sprintf("k%d", i)},
		Tag:         "tagA",
		ShardingKey: fmt.Sprintf("user-%d", i%7),
		Properties:  map[string]string{"trace": "abc", "retry": "0"},
		Body:        bytes.Repeat([]byte{byte(i)}, 50+i%50),
	}
}

func testRec(i int) []byte { return AppendRecord(nil, testMsg(i)) }

// testOpts are options for a log in a fresh temporary directory.
func testOpts(t *testing.T) Options {
	t.Helper()
	return Options{Dir: t.TempDir(), FlushInterval: 5 * time.Millisecond}
}

// openLog opens a log that the test's cleanup closes.
func openLog(t *testing.T, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// reopen closes l and opens the same directory again with opts.
func reopen(t *testing.T, l *Log, opts Options) *Log {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openLog(t, opts)
}

// appendRange appends records from..to-1 one per Append call and returns
// their positions and sizes.
func appendRange(t *testing.T, l *Log, from, to int) (pos []int64, sizes []int32) {
	t.Helper()
	for i := from; i < to; i++ {
		res, err := l.Append([][]byte{testRec(i)})
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		pos = append(pos, res.Positions[0])
		sizes = append(sizes, res.Sizes[0])
	}
	return pos, sizes
}

// scanAll returns the queue offsets of every record from MinPos to WrittenPos.
func scanAll(t *testing.T, l *Log) []int64 {
	t.Helper()
	var offs []int64
	next, err := l.Scan(l.MinPos(), l.WrittenPos(), 0, func(pos int64, rec []byte) error {
		m, _, err := DecodeRecord(rec)
		if err != nil {
			return err
		}
		offs = append(offs, m.QueueOffset)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if next != l.WrittenPos() {
		t.Fatalf("Scan ended at %d, want WrittenPos %d", next, l.WrittenPos())
	}
	return offs
}

// wantOffsets fails unless got is from..to-1 in order.
func wantOffsets(t *testing.T, got []int64, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d records, want %d", len(got), to-from)
	}
	for i, o := range got {
		if o != int64(from+i) {
			t.Fatalf("record %d has offset %d, want %d", i, o, from+i)
		}
	}
}

// segPath is the file of the segment with the given base in dir.
func segPath(dir string, base int64) string { return filepath.Join(dir, segmentName(base)) }

// segFiles lists the segment bases found in dir.
func segFiles(t *testing.T, dir string) []int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	for _, e := range ents {
		if b, ok := parseSegmentName(e.Name()); ok {
			bases = append(bases, b)
		}
	}
	return bases
}

// patchFile applies fn to the bytes of a file and writes them back.
func patchFile(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts one byte of a file in place, through a separate handle,
// as a bad disk would.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
