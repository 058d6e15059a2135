package meta

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/duomq/duomq/internal/etcdtest"
)

// reportLatency reports the p50 and p99 of per-operation latencies.
func reportLatency(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), prefix+"p50-ms")
	b.ReportMetric(pct(0.99), prefix+"p99-ms")
}

// timed runs op b.N times and reports its latency distribution.
func timed(b *testing.B, op func() error) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, "", lat)
}

// BenchmarkMetadataWrite measures metadata writes on a 3-member cluster
// on loopback, beside a plain etcd Put as the reference (the cost of one
// raft round and fsyncs).
func BenchmarkMetadataWrite(b *testing.B) {
	c := etcdtest.NewCluster(b, 3)
	cli := c.Client(b)
	s := newStore(b, cli)
	seed(b, s)
	ctx := context.Background()
	must(b)(s.CreateGroup(ctx, Group{Name: "g", Subscriptions: subs("events")}))

	b.Run("reference=etcd-put", func(b *testing.B) {
		timed(b, func() error { _, err := cli.Put(ctx, "/bench/raw", "v"); return err })
	})
	b.Run("cas-ordered", func(b *testing.B) {
		o, rev, err := s.GetOrdered(ctx, "orders")
		must(b)(rev, err)
		primaries := []string{"idc-a", "idc-b"}
		timed(b, func() error {
			o.Epoch++
			o.Primary = primaries[o.Epoch%2]
			rev, err = s.CASOrdered(ctx, "orders", rev, o)
			return err
		})
	})
	b.Run("create-topic", func(b *testing.B) {
		i := 0
		timed(b, func() error {
			i++
			_, err := s.CreateTopic(ctx, Topic{Name: "bench-" + strconv.Itoa(i), Queues: 4})
			return err
		})
	})
	b.Run("put-offsets-128", func(b *testing.B) {
		batch := make([]OffsetKV, 128)
		for q := range batch {
			batch[q] = OffsetKV{OffsetKey: OffsetKey{"g", "events", "idc-a", q}}
		}
		timed(b, func() error {
			for q := range batch {
				batch[q].Offset.Offset++
			}
			_, err := s.PutOffsets(ctx, batch)
			return err
		})
	})
}

// BenchmarkWatchPropagation measures how long a write takes to become
// visible in a Cache: from the start of the write call, and from its ack.
func BenchmarkWatchPropagation(b *testing.B) {
	c := etcdtest.NewCluster(b, 3)
	cli := c.Client(b)
	s := newStore(b, cli)
	seed(b, s)
	cache := openCache(b, s)
	changes, cancel := cache.Subscribe()
	defer cancel()
	ctx := context.Background()

	var fromCall, fromAck []time.Duration
	_, rev := cache.Traffic()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		next, err := s.CASTraffic(ctx, rev, Traffic{Weights: map[string]int{"idc-a": 1 + i%100}})
		if err != nil {
			b.Fatal(err)
		}
		acked := time.Now()
		for {
			if _, r := cache.Traffic(); r >= next {
				break
			}
			<-changes
		}
		fromCall = append(fromCall, time.Since(start))
		fromAck = append(fromAck, time.Since(acked))
		rev = next
	}
	b.StopTimer()
	reportLatency(b, "visible-", fromCall)
	reportLatency(b, "after-ack-", fromAck)
}
