// Package brokerbench measures a broker's storage engine and, in the same
// run, the physical references it is judged against: the disk's fsync rate
// and its bandwidth writing fsynced 1 MiB chunks. `duomq bench broker`
// prints its Result as JSON; docs/benchmarks.md records the figures.
package brokerbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/internal/latency"
)

// Options sizes the run.
type Options struct {
	Dir         string        // scratch directory (removed afterwards)
	MessageSize int           // bytes per body; 1024
	Duration    time.Duration // per measurement; 3 s
	Producers   int           // concurrent producers of the sync run; 64
}

// DefaultOptions returns the options of the documented figures.
func DefaultOptions() Options {
	return Options{MessageSize: 1024, Duration: 3 * time.Second, Producers: 64}
}

// Latency is a distribution in microseconds.
type Latency = latency.Summary

// Result is what one run measured.
type Result struct {
	Machine struct {
		CPUs int    `json:"cpus"`
		OS   string `json:"os"`
		Go   string `json:"go"`
	} `json:"machine"`
	MessageSize int `json:"message_size"`
	Reference   struct {
		FsyncsPerSec      float64 `json:"fsyncs_per_sec"`
		ChunkFsyncsPerSec float64 `json:"fsynced_1mib_chunks_per_sec"`
		ChunkMBPerSec     float64 `json:"fsynced_1mib_chunks_mb_per_sec"`
		// SyncBoundMsgSec is min(producers x fsyncs/s, bandwidth / size):
		// every fsync covering one message of every producer.
		SyncBoundMsgSec float64 `json:"sync_bound_msg_per_sec"`
	} `json:"reference"`
	AsyncAppend struct {
		MsgPerSec float64 `json:"msg_per_sec"`
		MBPerSec  float64 `json:"mb_per_sec"`
		Target    float64 `json:"target_msg_per_sec"`
	} `json:"async_append"`
	SyncGroupCommit struct {
		Producers int     `json:"producers"`
		MsgPerSec float64 `json:"msg_per_sec"`
		MBPerSec  float64 `json:"mb_per_sec"`
		OfBound   float64 `json:"fraction_of_bound"`
		// OfChunkBandwidth compares bytes/s with fsynced 1 MiB chunks.
		OfChunkBandwidth float64 `json:"fraction_of_1mib_chunk_bandwidth"`
		Target           float64 `json:"target_fraction"`
		SendLatency      Latency `json:"send_latency"`
	} `json:"sync_group_commit"`
	Pull struct {
		MsgPerSec float64 `json:"msg_per_sec"`
	} `json:"pull"`
	Latency struct {
		SendSync  Latency `json:"send_sync_one_producer"`
		SendAsync Latency `json:"send_async_one_producer"`
		Pull      Latency `json:"pull_32"`
	} `json:"latency"`
	MaxRSSMiB float64 `json:"max_rss_mib"`
}

// Run measures everything in opts.Dir.
func Run(ctx context.Context, opts Options) (Result, error) {
	var r Result
	r.Machine.CPUs, r.Machine.OS, r.Machine.Go = runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runtime.Version()
	r.MessageSize = opts.MessageSize
	fs, chunks, err := reference(opts.Dir, opts.Duration)
	if err != nil {
		return r, err
	}
	mbs := chunks * (1 << 20) / 1e6
	r.Reference.FsyncsPerSec, r.Reference.ChunkFsyncsPerSec, r.Reference.ChunkMBPerSec = fs, chunks, mbs
	r.Reference.SyncBoundMsgSec = min(float64(opts.Producers)*fs, mbs*1e6/float64(opts.MessageSize))
	if err := runAsync(ctx, opts, &r); err != nil {
		return r, err
	}
	if err := runSync(ctx, opts, &r); err != nil {
		return r, err
	}
	r.MaxRSSMiB = maxRSSMiB()
	return r, nil
}

func openBroker(dir, mode string) (*broker.Broker, error) {
	cfg := broker.DefaultConfig()
	cfg.DataDir, cfg.FlushMode, cfg.Name = dir, mode, "bench"
	cfg.SegmentBytes = 256 << 20
	b, err := broker.New(cfg, nil, nil)
	if err != nil {
		return nil, err
	}
	b.Start(context.Background())
	if _, err := b.CreateTopic(broker.TopicConfig{Name: "bench", Queues: 8}); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// runAsync: append throughput under async flush (two producers, one per
// core), then pull throughput and latencies of what was written.
func runAsync(ctx context.Context, opts Options, r *Result) error {
	dir := filepath.Join(opts.Dir, "async")
	defer os.RemoveAll(dir)
	b, err := openBroker(dir, broker.FlushAsync)
	if err != nil {
		return err
	}
	defer b.Close()
	n, elapsed, _ := load(ctx, b, 2, opts, false)
	r.AsyncAppend.MsgPerSec = float64(n) / elapsed.Seconds()
	r.AsyncAppend.MBPerSec = r.AsyncAppend.MsgPerSec * float64(opts.MessageSize) / 1e6
	r.AsyncAppend.Target = 150_000
	r.Latency.SendAsync = sendLatency(ctx, b, opts, 2000)
	r.Pull.MsgPerSec, r.Latency.Pull, err = pullAll(ctx, b)
	return err
}

func runSync(ctx context.Context, opts Options, r *Result) error {
	dir := filepath.Join(opts.Dir, "sync")
	defer os.RemoveAll(dir)
	b, err := openBroker(dir, broker.FlushSync)
	if err != nil {
		return err
	}
	defer b.Close()
	n, elapsed, lat := load(ctx, b, opts.Producers, opts, true)
	s := &r.SyncGroupCommit
	s.Producers, s.MsgPerSec, s.Target = opts.Producers, float64(n)/elapsed.Seconds(), 0.5
	s.OfBound = s.MsgPerSec / r.Reference.SyncBoundMsgSec
	s.MBPerSec = s.MsgPerSec * float64(opts.MessageSize) / 1e6
	s.OfChunkBandwidth = s.MBPerSec / r.Reference.ChunkMBPerSec
	s.SendLatency = lat
	r.Latency.SendSync = sendLatency(ctx, b, opts, 500)
	return nil
}

// load runs producers sending one message per call until opts.Duration.
func load(ctx context.Context, b *broker.Broker, producers int, opts Options, keepLatency bool) (int64, time.Duration, Latency) {
	var sent atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	body := make([]byte, opts.MessageSize)
	stop := time.Now().Add(opts.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			req := broker.SendRequest{Topic: "bench", QueueID: int32(p % 8), Messages: []broker.Message{{Body: body}}}
			for time.Now().Before(stop) && ctx.Err() == nil {
				t0 := time.Now()
				if _, err := b.Send(ctx, req); err != nil {
					return
				}
				if keepLatency {
					local = append(local, time.Since(t0))
				}
				sent.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return sent.Load(), time.Since(start), summarize(lats)
}

func sendLatency(ctx context.Context, b *broker.Broker, opts Options, n int) Latency {
	body := make([]byte, opts.MessageSize)
	lats := make([]time.Duration, 0, n)
	req := broker.SendRequest{Topic: "bench", QueueID: 0, Messages: []broker.Message{{Body: body}}}
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := b.Send(ctx, req); err != nil {
			break
		}
		lats = append(lats, time.Since(t0))
	}
	return summarize(lats)
}

// pullAll reads every queue from the start, 32 messages a pull.
func pullAll(ctx context.Context, b *broker.Broker) (float64, Latency, error) {
	var total int
	var lats []time.Duration
	start := time.Now()
	for q := uint32(0); q < 8; q++ {
		_, hi, err := b.QueueOffsets("bench", q)
		if err != nil {
			return 0, Latency{}, err
		}
		for off := int64(0); off < hi; {
			t0 := time.Now()
			res, err := b.Pull(ctx, broker.PullRequest{Topic: "bench", QueueID: q, Offset: off, MaxMessages: 32})
			if err != nil {
				return 0, Latency{}, err
			}
			lats = append(lats, time.Since(t0))
			total += len(res.Messages)
			off = res.NextOffset
		}
	}
	return float64(total) / time.Since(start).Seconds(), summarize(lats), nil
}

func summarize(d []time.Duration) Latency { return latency.Summarize(d) }

// reference measures the disk: fsyncs per second of small appends (the
// group-commit ceiling per producer), and fsynced 1 MiB chunks per second.
func reference(dir string, d time.Duration) (fsyncsPerSec, chunksPerSec float64, err error) {
	f, err := os.CreateTemp(dir, "reference-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	small := make([]byte, 1024)
	n, start := 0, time.Now()
	for time.Since(start) < d/2 {
		if _, err := f.Write(small); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
		n++
	}
	fsyncsPerSec = float64(n) / time.Since(start).Seconds()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	n, start = 0, time.Now()
	for time.Since(start) < d/2 {
		if _, err := f.Write(chunk); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
		n++
	}
	return fsyncsPerSec, float64(n) / time.Since(start).Seconds(), nil
}

// maxRSSMiB reads the process's peak resident set (VmHWM) on Linux.
func maxRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// String is a one-line human summary.
func (r Result) String() string {
	return fmt.Sprintf("async append %.0f msg/s; sync group commit (%d producers) %.0f msg/s = %.0f%% of bound %.0f msg/s",
		r.AsyncAppend.MsgPerSec, r.SyncGroupCommit.Producers, r.SyncGroupCommit.MsgPerSec, 100*r.SyncGroupCommit.OfBound, r.Reference.SyncBoundMsgSec)
}
