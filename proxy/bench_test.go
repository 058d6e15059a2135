package proxy_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/latency"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/proxy"
)

// BenchmarkProduce sends 1 KiB messages through idc-a's proxy and, as the
// same-run reference, the same load straight to one of idc-a's brokers
// (async flush, loopback): the difference is what the proxy adds. Each
// sub-benchmark reports the p50 and p99 latency of one send, sequentially
// (one producer) and with parallel producers.
func BenchmarkProduce(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{Proxy: func(_ string, cfg *proxy.Config) { cfg.RouteRefresh = time.Second }})
	c.CreateTopic(b, meta.Topic{Name: "bench", Queues: 8})
	px := c.ProxyClient(b, dcA)
	bc := c.BrokerClient(b, dcA, 0)
	payload := make([]byte, 1024)
	viaProxy := func(ctx context.Context) error {
		_, err := px.Send(ctx, &proxypb.SendRequest{Topic: "bench", Messages: []*proxypb.Message{{Body: payload}}})
		return err
	}
	direct := func(ctx context.Context) error {
		_, err := bc.Send(ctx, &brokerpb.SendRequest{Topic: "bench", QueueId: -1, Messages: []*brokerpb.MessageInput{{Body: payload}}})
		return err
	}
	for _, mode := range []string{"seq", "par"} {
		b.Run("via=proxy/"+mode, func(b *testing.B) { measure(b, mode == "par", viaProxy) })
		b.Run("via=broker/"+mode, func(b *testing.B) { measure(b, mode == "par", direct) })
	}
}

// measure runs op b.N times and reports the latency percentiles.
func measure(b *testing.B, parallel bool, op func(context.Context) error) {
	ctx := context.Background()
	var (
		mu  sync.Mutex
		lat = make([]time.Duration, 0, b.N)
	)
	b.SetBytes(1024)
	b.ResetTimer()
	if !parallel {
		for range b.N {
			start := time.Now()
			if err := op(ctx); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	} else {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				start := time.Now()
				if err := op(ctx); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	l := latency.Summarize(lat)
	b.ReportMetric(l.P50us, "p50-µs")
	b.ReportMetric(l.P99us, "p99-µs")
}
