package commitlog

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/duomq/duomq/internal/vfs/errorfs"
)

// A read error is an I/O failure, not corruption: it must be returned as
// it is, never counted as corruption, and never make recovery cut data.
func TestReadErrorsAreNotCorruption(t *testing.T) {
	fs := errorfs.Wrap(nil)
	opts := testOpts(t)
	opts.FS = fs
	l := openLog(t, opts)
	pos, sizes := appendRange(t, l, 0, 5)
	fs.Inject(errorfs.OpRead, nil)
	if _, err := l.ReadMessage(pos[2], int(sizes[2])); !errors.Is(err, errorfs.ErrInjected) || errors.Is(err, ErrCorruption) {
		t.Fatalf("ReadMessage err = %v", err)
	}
	if _, err := l.Scan(0, l.WrittenPos(), 0, func(int64, []byte) error { return nil }); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Scan err = %v", err)
	}
	if l.Metrics().CorruptRecords != 0 {
		t.Fatal("read errors counted as corruption")
	}
	end := l.WrittenPos()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(opts); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Open with failing reads: %v", err)
	}
	fs.Clear()
	l = openLog(t, opts)
	if l.WrittenPos() != end {
		t.Fatalf("a failed Open cut the log to %d, want %d", l.WrittenPos(), end)
	}
}

func TestOpenFailures(t *testing.T) {
	for _, op := range []errorfs.Op{errorfs.OpMkdirAll, errorfs.OpReadDir, errorfs.OpOpen, errorfs.OpStat, errorfs.OpSyncDir} {
		t.Run(op.String(), func(t *testing.T) {
			fs := errorfs.Wrap(nil)
			opts := testOpts(t)
			opts.FS = fs
			l := openLog(t, opts)
			appendRange(t, l, 0, 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if op == errorfs.OpSyncDir { // only an empty directory needs it at open
				opts.Dir = t.TempDir()
			}
			fs.Inject(op, nil)
			if _, err := Open(opts); !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("Open err = %v", err)
			}
		})
	}
}

func TestTrustedSegmentWithoutMarker(t *testing.T) {
	l, opts, _, _ := timedLog(t, 60, time.Now())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	bases := segFiles(t, opts.Dir)
	// Damage the end marker of the oldest segment, which the checkpoint
	// says is durable: Open trusts it and dates it by its file instead.
	flipByte(t, segPath(opts.Dir, bases[0]), bases[1]-bases[0]-3)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(segPath(opts.Dir, bases[0]), old, old); err != nil {
		t.Fatal(err)
	}
	opts.RecoverFrom = bases[len(bases)-1]
	l = openLog(t, opts)
	if n, err := l.Retain(24*time.Hour, 0, time.Now()); err != nil || n != 1 {
		t.Fatalf("Retain = %d, %v; want the 2-day-old segment deleted", n, err)
	}
}
