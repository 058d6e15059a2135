package commitlog

import (
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"testing"
	"time"

	"github.com/duomq/duomq/internal/vfs"
)

// The seed corpora live in testdata/fuzz/<target>: valid records and logs,
// and damaged variants of them.

func FuzzDecodeRecord(f *testing.F) {
	f.Add(testRec(1))
	f.Fuzz(checkDecode)
}

// FuzzDecodePayload frames arbitrary bytes with a correct length, version
// and checksum, so that the fuzzer explores the field decoder instead of
// spending itself against the checksum.
func FuzzDecodePayload(f *testing.F) {
	for i := range 4 {
		f.Add(testRec(i)[HeaderSize:])
	}
	f.Add(AppendRecord(nil, &Message{})[HeaderSize:])
	f.Add(unsortedPropsRecord()[HeaderSize:])
	f.Fuzz(func(t *testing.T, payload []byte) {
		b := make([]byte, HeaderSize, HeaderSize+len(payload))
		le.PutUint32(b, uint32(HeaderSize+len(payload)))
		b[8] = FormatVersion
		checkDecode(t, reseal(append(b, payload...)))
	})
}

// checkDecode decodes b and checks what a successful decode promises.
func checkDecode(t *testing.T, b []byte) {
	m, n, err := DecodeRecord(b)
	if err != nil {
		if !errors.Is(err, ErrCorruption) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("error is neither corruption nor short input: %v", err)
		}
		return
	}
	if n < MinRecordSize || n > len(b) {
		t.Fatalf("consumed %d of %d bytes", n, len(b))
	}
	if le.Uint32(b[4:]) != crc32.Checksum(b[8:n], castagnoli) {
		t.Fatal("decoded a record whose checksum does not match")
	}
	if again := AppendRecord(nil, &m); !bytes.Equal(again, b[:n]) {
		t.Fatalf("re-encoding differs:\n in %x\nout %x", b[:n], again)
	}
	if EncodedSize(&m) != n {
		t.Fatalf("EncodedSize %d, record %d", EncodedSize(&m), n)
	}
}

// FuzzRecoveryScan writes arbitrary bytes as a log directory — one segment
// file, or two when split falls inside data — and opens it. Open must not
// fail or panic, every record a Scan then returns must be valid, appends
// must work, and a second Open must find nothing more to cut.
func FuzzRecoveryScan(f *testing.F) {
	f.Add(append(testRec(1), testRec(2)...), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		dir := t.TempDir()
		writeSegments(t, dir, data, int(split))
		opts := Options{Dir: dir, SegmentSize: 4096, FlushInterval: time.Hour, FS: noSyncFS{vfs.Default}}
		l, err := Open(opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		n := checkScan(t, l)
		res, err := l.Append([][]byte{testRec(n)})
		if err != nil {
			t.Fatalf("Append after recovery: %v", err)
		}
		if _, err := l.ReadMessage(res.Positions[0], int(res.Sizes[0])); err != nil {
			t.Fatalf("ReadMessage of the new record: %v", err)
		}
		end := l.WrittenPos()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l2, err := Open(opts)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer l2.Close()
		if l2.WrittenPos() != end || l2.Metrics().TruncatedTails != 0 {
			t.Fatalf("second Open: WrittenPos %d (want %d), cut %d tails", l2.WrittenPos(), end, l2.Metrics().TruncatedTails)
		}
		if got := checkScan(t, l2); got != n+1 {
			t.Fatalf("second Open holds %d records, want %d", got, n+1)
		}
	})
}

// writeSegments lays data out as segment files starting at position 0.
func writeSegments(t *testing.T, dir string, data []byte, split int) {
	t.Helper()
	parts := [][]byte{data}
	if split > 0 && split < len(data) {
		parts = [][]byte{data[:split], data[split:]}
	}
	base := int64(0)
	for _, p := range parts {
		if err := os.WriteFile(segPath(dir, base), p, 0o644); err != nil {
			t.Fatal(err)
		}
		base += int64(len(p))
	}
}

// checkScan scans the whole log, checking every record, and counts them.
func checkScan(t *testing.T, l *Log) int {
	t.Helper()
	n := 0
	next, err := l.Scan(l.MinPos(), l.WrittenPos(), 0, func(pos int64, rec []byte) error {
		if le.Uint32(rec[4:]) != crc32.Checksum(rec[8:], castagnoli) {
			t.Fatalf("Scan returned a record with a bad checksum at %d", pos)
		}
		if _, _, err := DecodeRecord(rec); err != nil {
			t.Fatalf("Scan returned an undecodable record at %d: %v", pos, err)
		}
		n++
		return nil
	})
	if err != nil || next != l.WrittenPos() {
		t.Fatalf("Scan after recovery: next %d of %d, %v", next, l.WrittenPos(), err)
	}
	return n
}

// noSyncFS skips fsyncs, which would otherwise dominate a fuzz iteration and
// are beside the point of what it checks.
type noSyncFS struct{ vfs.FS }

func (fs noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error { return nil }
