package nameserver

import (
	"context"
	"fmt"
	"testing"

	"github.com/duomq/duomq/api/nameserverpb"
)

// BenchmarkGetRouteGRPC: route look-ups over loopback gRPC against a
// nameserver holding 8 brokers with 200 topics each; reports look-ups/s.
func BenchmarkGetRouteGRPC(b *testing.B) {
	s, addr, _ := serveNSB(b)
	for i := 0; i < 8; i++ {
		r := reg(fmt.Sprintf("b%d", i), []string{"idc-a", "idc-b"}[i%2])
		for t := 0; t < 200; t++ {
			r.Topics = append(r.Topics, &nameserverpb.TopicQueues{Name: fmt.Sprintf("t%d", t), Queues: 8, Perm: 6})
		}
		s.Register(context.Background(), &nameserverpb.RegisterRequest{Broker: r})
	}
	c, err := dial([]string{addr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.clients[0].GetRoute(context.Background(), &nameserverpb.GetRouteRequest{Topic: fmt.Sprintf("t%d", i%200)}); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}
