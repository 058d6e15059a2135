package commitlog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duomq/duomq/internal/vfs/errorfs"
)

func syncOpts(t *testing.T) Options {
	t.Helper()
	o := testOpts(t)
	o.FlushMode = FlushSync
	return o
}

func TestGroupCommit(t *testing.T) {
	opts := syncOpts(t)
	// A slow disk: while one fsync runs, every other producer appends and
	// waits, and the next fsync must cover them all.
	opts.Hooks.BeforeFsync = func() error { time.Sleep(2 * time.Millisecond); return nil }
	l := openLog(t, opts)
	const producers, perProducer = 50, 4
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				res, err := l.Append([][]byte{testRec(p*perProducer + i)})
				if err == nil {
					err = l.WaitDurable(context.Background(), res.End)
				}
				if err == nil && l.DurablePos() < res.End {
					err = errors.New("WaitDurable returned before its bytes were durable")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waits := producers * perProducer
	fsyncs := l.Metrics().Fsyncs
	t.Logf("%d waits shared %d fsyncs", waits, fsyncs)
	if fsyncs >= uint64(waits)/2 {
		t.Fatalf("%d fsyncs for %d waits: appends are not batched", fsyncs, waits)
	}
}

func TestFsyncFailureFailsLog(t *testing.T) {
	fs := errorfs.Wrap(nil)
	opts := syncOpts(t)
	opts.FS = fs
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := appendRange(t, l, 0, 1)
	if err := l.WaitDurable(context.Background(), l.WrittenPos()); err != nil {
		t.Fatalf("healthy WaitDurable: %v", err)
	}
	durable := l.DurablePos()
	fs.Inject(errorfs.OpSync, nil)
	r, err := l.Append([][]byte{testRec(1)})
	if err != nil {
		t.Fatal(err)
	}
	err = l.WaitDurable(context.Background(), r.End)
	if !errors.Is(err, ErrLogFailed) || !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("WaitDurable err = %v, want ErrLogFailed wrapping the fsync error", err)
	}
	if l.DurablePos() != durable {
		t.Fatalf("DurablePos moved to %d after a failed fsync", l.DurablePos())
	}
	if _, err := l.Append([][]byte{testRec(2)}); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Append after fsync failure: %v", err)
	}
	if err := l.WaitDurable(context.Background(), first[0]+1); err != nil {
		t.Fatalf("WaitDurable of bytes durable before the failure: %v", err)
	}
	fs.Clear() // the disk recovers, but this Log must not claim durability
	if err := l.Sync(); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Sync after failure: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Close after failure: %v", err)
	}
	l = openLog(t, opts) // reopening recovers
	wantOffsets(t, scanAll(t, l), 0, 2)
}

func TestBeforeFsyncFaultPoint(t *testing.T) {
	opts := syncOpts(t)
	boom := errors.New("boom")
	opts.Hooks.BeforeFsync = func() error { return boom }
	l := openLog(t, opts)
	res, err := l.Append([][]byte{testRec(0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(context.Background(), res.End); !errors.Is(err, boom) || !errors.Is(err, ErrLogFailed) {
		t.Fatalf("WaitDurable err = %v", err)
	}
}

func TestWriteFailureFailsLog(t *testing.T) {
	cases := []struct {
		name   string
		inject func(fs *errorfs.FS, opts *Options)
	}{
		{"pwrite", func(fs *errorfs.FS, _ *Options) { fs.Inject(errorfs.OpWrite, nil) }},
		{"create segment on roll", func(fs *errorfs.FS, _ *Options) { fs.Inject(errorfs.OpOpen, nil) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := errorfs.Wrap(nil)
			opts := testOpts(t)
			opts.FS, opts.SegmentSize = fs, MinSegmentSize
			l := openLog(t, opts)
			appendRange(t, l, 0, 3)
			written := l.WrittenPos()
			tc.inject(fs, &opts)
			var err error
			for i := 3; i < 30 && err == nil; i++ { // until a roll needs a new file
				_, err = l.Append([][]byte{testRec(i)})
			}
			if !errors.Is(err, ErrLogFailed) || !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("Append err = %v", err)
			}
			fs.Clear()
			if _, err := l.Append([][]byte{testRec(99)}); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("Append after failure: %v", err)
			}
			if l.WrittenPos() < written {
				t.Fatal("WrittenPos went backwards")
			}
		})
	}
}

func TestAfterWriteFaultPoint(t *testing.T) {
	opts := testOpts(t)
	var fail atomic.Bool
	opts.Hooks.AfterWrite = func() error {
		if fail.Load() {
			return errors.New("crash here")
		}
		return nil
	}
	l := openLog(t, opts)
	appendRange(t, l, 0, 2)
	written := l.WrittenPos()
	fail.Store(true)
	if _, err := l.Append([][]byte{testRec(2)}); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("Append err = %v", err)
	}
	if l.WrittenPos() != written {
		t.Fatal("bytes of a failed append became visible")
	}
}

func TestWaitDurableContextAndClose(t *testing.T) {
	opts := syncOpts(t)
	release := make(chan struct{})
	var once sync.Once
	opts.Hooks.BeforeFsync = func() error { <-release; return nil }
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer once.Do(func() { close(release) })
	res, err := l.Append([][]byte{testRec(0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.WaitDurable(ctx, res.End); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDurable err = %v, want deadline", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- l.WaitDurable(context.Background(), res.End) }()
	once.Do(func() { close(release) })
	if err := <-waited; err != nil {
		t.Fatalf("WaitDurable after the fsync: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(context.Background(), res.End); err != nil {
		t.Fatalf("WaitDurable of durable bytes after Close: %v", err)
	}
	if err := l.WaitDurable(context.Background(), res.End+1); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitDurable past the end after Close: %v", err)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	l, err := Open(syncOpts(t))
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- l.WaitDurable(context.Background(), 1<<40) }()
	time.Sleep(10 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("waiter got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left a waiter blocked")
	}
}

func TestAsyncFlush(t *testing.T) {
	opts := testOpts(t)
	var fsyncs atomic.Int32
	opts.Hooks.OnFsync = func(time.Duration) { fsyncs.Add(1) }
	l := openLog(t, opts)
	appendRange(t, l, 0, 5)
	if err := l.WaitDurable(context.Background(), l.WrittenPos()); err != nil {
		t.Fatalf("async WaitDurable: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.DurablePos() < l.WrittenPos() {
		if time.Now().After(deadline) {
			t.Fatalf("DurablePos stuck at %d < %d", l.DurablePos(), l.WrittenPos())
		}
		<-l.Changed()
	}
	if fsyncs.Load() == 0 || l.Metrics().FsyncNanos == 0 {
		t.Fatal("OnFsync not called / FsyncNanos not counted")
	}
}

func TestSyncMakesDurable(t *testing.T) {
	opts := testOpts(t)
	opts.FlushInterval = time.Hour
	l := openLog(t, opts)
	appendRange(t, l, 0, 5)
	if l.DurablePos() == l.WrittenPos() {
		t.Fatal("durable before any fsync")
	}
	if err := l.Sync(); err != nil || l.DurablePos() != l.WrittenPos() {
		t.Fatalf("Sync: %v, DurablePos %d WrittenPos %d", err, l.DurablePos(), l.WrittenPos())
	}
}

func TestRollSyncsDirectory(t *testing.T) {
	fs := errorfs.Wrap(nil)
	opts := syncOpts(t)
	opts.FS, opts.SegmentSize = fs, MinSegmentSize
	l := openLog(t, opts)
	before := fs.Count(errorfs.OpSyncDir)
	appendRange(t, l, 0, 30)
	if err := l.WaitDurable(context.Background(), l.WrittenPos()); err != nil {
		t.Fatal(err)
	}
	if fs.Count(errorfs.OpSyncDir) == before {
		t.Fatal("segments were created but the directory was never fsynced")
	}
	fs.Inject(errorfs.OpSyncDir, nil)
	var err error
	for i := 30; i < 60 && err == nil; i++ { // until a roll needs the directory synced
		var res AppendResult
		if res, err = l.Append([][]byte{testRec(i)}); err == nil {
			err = l.WaitDurable(context.Background(), res.End)
		}
	}
	if !errors.Is(err, errorfs.ErrInjected) || !errors.Is(err, ErrLogFailed) {
		t.Fatalf("with a failing directory fsync: %v", err)
	}
}

func TestConcurrentReadersWritersRetention(t *testing.T) {
	opts := syncOpts(t)
	opts.SegmentSize = 4096
	l := openLog(t, opts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // retention racing the readers
		defer wg.Done()
		for ctx.Err() == nil {
			l.Retain(0, 16<<10, time.Now())
			time.Sleep(time.Millisecond)
		}
	}()
	go func() { // a dispatcher following DurablePos
		defer wg.Done()
		pos := int64(0)
		for ctx.Err() == nil {
			if pos < l.MinPos() {
				pos = l.MinPos()
			}
			ch := l.Changed()
			next, err := l.Scan(pos, l.DurablePos(), 1<<16, func(int64, []byte) error { return nil })
			if err != nil && !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Scan: %v", err)
				return
			}
			pos = next
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
	}()
	for i := 0; i < 2000; i++ {
		res, err := l.Append([][]byte{testRec(i)})
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := l.WaitDurable(ctx, res.End); err != nil {
				t.Fatal(err)
			}
		}
		if p := res.Positions[0]; p >= l.MinPos() {
			if _, err := l.ReadMessage(p, int(res.Sizes[0])); err != nil && !errors.Is(err, ErrOutOfRange) {
				t.Fatal(err)
			}
		}
	}
	cancel()
	wg.Wait()
	if l.Metrics().CorruptRecords != 0 {
		t.Fatal("races reported as corruption")
	}
}
