package commitlog

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchRecord is a framed record with a body of bodySize bytes and the
// headers a producer typically sets.
func benchRecord(bodySize int) []byte {
	m := testMsg(1)
	m.Body = make([]byte, bodySize)
	return AppendRecord(nil, m)
}

func openBench(b *testing.B, mode FlushMode) *Log {
	b.Helper()
	l, err := Open(Options{Dir: b.TempDir(), FlushMode: mode})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func reportRate(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), unit)
}

// BenchmarkAppendAsync1KiB is the broker's async-flush path: one 1 KiB
// message per Append, fsync in the background every 200 ms.
func BenchmarkAppendAsync1KiB(b *testing.B) {
	l := openBench(b, FlushAsync)
	batch := [][]byte{benchRecord(1024)}
	b.SetBytes(int64(len(batch[0])))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportRate(b, n, "msg/s")
}

// BenchmarkAppendSyncGroupCommit has 64 producers each doing
// Append + WaitDurable of a 1 KiB message: every ack waits for an fsync,
// and group commit shares each fsync among all waiting producers. Compare
// with BenchmarkFsyncReference*: the physical bound is
// min(64 × fsyncs/s, disk MB/s / 1 KiB).
func BenchmarkAppendSyncGroupCommit(b *testing.B) {
	const producers = 64
	l := openBench(b, FlushSync)
	rec := benchRecord(1024)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	before := l.Metrics()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := [][]byte{rec}
			for next.Add(1) <= int64(b.N) {
				res, err := l.Append(batch)
				if err == nil {
					err = l.WaitDurable(context.Background(), res.End)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	after := l.Metrics()
	fsyncs := max(after.Fsyncs-before.Fsyncs, 1)
	reportRate(b, b.N, "msg/s")
	b.ReportMetric(float64(b.N)/float64(fsyncs), "msg/fsync")
	reportRate(b, int(fsyncs), "fsync/s")
	b.ReportMetric(float64(after.FsyncNanos-before.FsyncNanos)/float64(fsyncs)/1e3, "µs/fsync")
}

// fsyncReference writes chunk-sized blocks to a fresh file in the same
// temporary filesystem and fsyncs after each: what the disk itself allows.
func fsyncReference(b *testing.B, chunk int) {
	f, err := os.Create(filepath.Join(b.TempDir(), "reference"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, chunk)
	b.SetBytes(int64(chunk))
	var off int64
	n := 0
	for b.Loop() {
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		off += int64(chunk)
		n++
	}
	reportRate(b, n, "fsync/s")
}

// BenchmarkFsyncReference1MiB measures write+fsync of 1 MiB chunks: the
// disk's bandwidth under fsync (MB/s) and its fsync rate at that size.
func BenchmarkFsyncReference1MiB(b *testing.B) { fsyncReference(b, 1<<20) }

// BenchmarkFsyncReference4KiB measures the fsync rate for small writes,
// which is what bounds a producer that waits for each of its messages.
func BenchmarkFsyncReference4KiB(b *testing.B) { fsyncReference(b, 4<<10) }

func BenchmarkEncodeRecord1KiB(b *testing.B) {
	m := testMsg(1)
	m.Body = make([]byte, 1024)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRecord(buf[:0], m)
	}
}

func BenchmarkDecodeRecord1KiB(b *testing.B) {
	rec := benchRecord(1024)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScan1KiB is the dispatcher's read path over records already in
// the page cache.
func BenchmarkScan1KiB(b *testing.B) {
	l := openBench(b, FlushAsync)
	rec := benchRecord(1024)
	batch := make([][]byte, 1000)
	for i := range batch {
		batch[i] = rec
	}
	for i := 0; i < 64; i++ {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	pos, n := int64(0), 0
	start := time.Now()
	for b.Loop() {
		if pos >= l.WrittenPos() {
			pos = 0
		}
		next, err := l.Scan(pos, l.WrittenPos(), len(rec), func(int64, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		pos = next
		n++
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msg/s")
}
