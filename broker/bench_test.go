package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func benchBroker(b *testing.B, mode string) *Broker {
	b.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.FlushMode = mode
	cfg.SegmentBytes = 256 << 20
	br, err := New(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	br.Start(context.Background())
	b.Cleanup(func() { br.Close() })
	if _, err := br.CreateTopic(TopicConfig{Name: "bench", Queues: 8}); err != nil {
		b.Fatal(err)
	}
	return br
}

// sendLoad sends b.N 1 KiB messages from producers goroutines.
func sendLoad(b *testing.B, br *Broker, producers int) {
	body := make([]byte, 1024)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := SendRequest{Topic: "bench", QueueID: int32(p % 8), Messages: []Message{{Body: body}}}
			for next.Add(1) <= int64(b.N) {
				if _, err := br.Send(context.Background(), req); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchmarkSendAsync1KiB: the whole broker send path (validation, offsets,
// encoding, commitlog write) under async flush; target 150k msg/s.
func BenchmarkSendAsync1KiB(b *testing.B) { sendLoad(b, benchBroker(b, FlushAsync), 2) }

// BenchmarkSendSync64 : sync flush, 64 producers sharing fsyncs; compare
// with the commitlog package's BenchmarkFsyncReference* run alongside.
func BenchmarkSendSync64(b *testing.B) {
	br := benchBroker(b, FlushSync)
	sendLoad(b, br, 64)
	m := br.clog.Metrics()
	b.ReportMetric(float64(m.Appends)/float64(m.Fsyncs), "msg/fsync")
	b.ReportMetric(float64(m.FsyncNanos)/float64(m.Fsyncs)/1e3, "us/fsync")
}

// BenchmarkPull32: pulls of 32 messages from a full queue.
func BenchmarkPull32(b *testing.B) {
	br := benchBroker(b, FlushAsync)
	body := make([]byte, 1024)
	msgs := make([]Message, 64)
	for i := range msgs {
		msgs[i] = Message{Body: body}
	}
	for i := 0; i < 200; i++ {
		if _, err := br.Send(context.Background(), SendRequest{Topic: "bench", QueueID: 0, Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
	for br.dispatched.Load() < br.clog.WrittenPos() {
		<-br.waitDispatch()
	}
	b.SetBytes(32 * 1024)
	b.ResetTimer()
	off := int64(0)
	for i := 0; i < b.N; i++ {
		res, err := br.Pull(context.Background(), PullRequest{Topic: "bench", QueueID: 0, Offset: off, MaxMessages: 32})
		if err != nil {
			b.Fatal(err)
		}
		off = res.NextOffset % (200 * 64)
	}
	b.ReportMetric(float64(b.N*32)/b.Elapsed().Seconds(), "msg/s")
}
