package broker

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagOf gathers reg and returns the consumer lag series of (group, topic):
// messages and seconds, and whether they exist.
func lagOf(t *testing.T, reg *prometheus.Registry, group, topic string) (msgs, secs float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] != group || labels["topic"] != topic {
				continue
			}
			switch mf.GetName() {
			case "duomq_broker_consumer_lag_messages":
				msgs, ok = m.GetGauge().GetValue(), true
			case "duomq_broker_consumer_lag_seconds":
				secs = m.GetGauge().GetValue()
			}
		}
	}
	return msgs, secs, ok
}

func TestConsumerLagMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b, err := New(testConfig(t.TempDir()), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Start(ctx)
	t.Cleanup(func() { cancel(); b.Close() })
	mustCreate(t, b, "orders", 2)
	sendN(t, b, "orders", 0, 5)
	sendN(t, b, "orders", 1, 3)
	pullAll(t, b, "orders", 0, 0, 5) // dispatched
	pullAll(t, b, "orders", 1, 0, 3)
	time.Sleep(20 * time.Millisecond) // a measurable age

	if _, _, ok := lagOf(t, reg, "billing", "orders"); ok {
		t.Fatal("lag exported for a group without committed offsets")
	}
	for _, c := range []struct {
		group string
		queue uint32
		off   int64
	}{{"billing", 0, 2}, {"billing", 1, 3}} {
		if err := b.CommitOffset(c.group, "orders", c.queue, c.off); err != nil {
			t.Fatalf("CommitOffset %+v: %v", c, err)
		}
	}
	b.offs.Commit(SchedulerGroup, "orders", 0, 0) // internal: not a consumer
	msgs, secs, ok := lagOf(t, reg, "billing", "orders")
	if !ok || msgs != 3 {
		t.Fatalf("lag messages = %v (exported %v), want 3 (queue 0: 5-2, queue 1 caught up)", msgs, ok)
	}
	if secs < 0.02 || secs > 60 {
		t.Fatalf("lag seconds = %v, want the age of queue 0's message at offset 2", secs)
	}
	if _, _, ok := lagOf(t, reg, SchedulerGroup, "orders"); ok {
		t.Fatal("an internal group's lag is exported")
	}

	// Caught up everywhere: no backlog, no age.
	if err := b.CommitOffset("billing", "orders", 0, 5); err != nil {
		t.Fatal(err)
	}
	if msgs, secs, _ := lagOf(t, reg, "billing", "orders"); msgs != 0 || secs != 0 {
		t.Fatalf("caught up: lag %v messages, %v s; want 0, 0", msgs, secs)
	}
}
