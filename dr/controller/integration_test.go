package controller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
)

// startReal runs a controller candidate over the test cluster's metadata
// and real brokers.
func startReal(t *testing.T, c *testcluster.Cluster, id string, hooks controller.Hooks) *controller.Controller {
	t.Helper()
	cfg := controller.DefaultConfig()
	cfg.ID, cfg.APIURL = id, "http://"+id+".invalid:1"
	cfg.ElectionTTL = time.Second
	brokers := controller.NewGRPCBrokers()
	ctl, err := controller.New(cfg, controller.Deps{Store: c.Meta(), Brokers: brokers, Logger: testLogger(), Registerer: prometheus.NewRegistry(), Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ctl.Run(context.Background()) }()
	t.Cleanup(func() {
		ctl.Close()
		if err := <-done; err != nil {
			t.Errorf("Run %s: %v", id, err)
		}
		brokers.Close()
	})
	select {
	case <-ctl.Ready():
	case <-time.After(wait):
		t.Fatalf("controller %s not ready", id)
	}
	return ctl
}

// keyedSends sends key k's sequence numbers in order through px until
// stop, retrying each until acked. It returns a count of acks so far and
// a func that waits for the senders and returns the acked bodies per key.
func keyedSends(t *testing.T, px proxypb.ProxyClient, topic string, keys int, stop <-chan struct{}) (func() int, func() map[string][]string) {
	var mu sync.Mutex
	acked := map[string][]string{}
	count := 0
	var wg sync.WaitGroup
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		wg.Go(func() {
			for seq := 0; ; seq++ {
				msg := &proxypb.Message{Id: fmt.Sprintf("%s-%06d", key, seq), ShardingKey: key, Body: fmt.Appendf(nil, "%s-%06d", key, seq)}
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_, err := px.Send(ctx, &proxypb.SendRequest{Topic: topic, Messages: []*proxypb.Message{msg}, Idempotent: true})
					cancel()
					if err == nil {
						mu.Lock()
						acked[key] = append(acked[key], string(msg.Body))
						count++
						mu.Unlock()
						break
					}
					time.Sleep(10 * time.Millisecond) // the topic is moving: retry shortly
				}
			}
		})
	}
	n := func() int { mu.Lock(); defer mu.Unlock(); return count }
	return n, func() map[string][]string { wg.Wait(); return acked }
}

// storedBodies reads every queue of topic in dc, by key, in queue order.
func storedBodies(t *testing.T, c *testcluster.Cluster, dc, topic string, queues int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	n := len(c.Brokers(dc))
	for q := range queues {
		bc := c.BrokerClient(t, dc, q%n)
		for off := int64(0); ; {
			res, err := bc.Pull(context.Background(), &brokerpb.PullRequest{Topic: topic, QueueId: uint32(q), Offset: off, MaxMessages: 1024})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range res.GetMessages() {
				out[m.GetShardingKey()] = append(out[m.GetShardingKey()], string(m.GetBody()))
			}
			if res.GetNextOffset() == off {
				break
			}
			off = res.GetNextOffset()
		}
	}
	return out
}

// TestSwitchoverResumedByNextLeaderWithRealBrokers stops the leading
// controller right after it fenced idc-a's brokers in a switchover, under
// ordered sync load; the next leader finishes the switchover from
// controller/state. Every acked message is in idc-b, in order per key.
func TestSwitchoverResumedByNextLeaderWithRealBrokers(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	const topic, queues = "trades", 4
	c.CreateTopic(t, meta.Topic{Name: topic, Queues: queues, Ordered: true, Primary: testcluster.DCA, Replication: meta.ReplicationSync})
	halted := make(chan struct{})
	var once sync.Once
	c1 := startReal(t, c, "c1", controller.Hooks{AfterPhase: func(tr controller.Transition, p controller.Phase) error {
		if tr.Kind == controller.KindSwitchover && p == controller.PhaseFence {
			once.Do(func() { close(halted) })
			return errors.New("leader crashes after fencing")
		}
		return nil
	}})
	testcluster.Eventually(t, c1.IsLeader, "c1 leads")
	c2 := startReal(t, c, "c2", controller.Hooks{})

	stop := make(chan struct{})
	acks, finish := keyedSends(t, c.ProxyClient(t, testcluster.DCA), topic, 6, stop)
	testcluster.Eventually(t, func() bool { return acks() >= 100 }, "load before the move")

	_, err := c1.Switchover(context.Background(), controller.SwitchoverRequest{Topic: topic, To: testcluster.DCB, Actor: "test"})
	if !errors.Is(err, controller.ErrInterrupted) {
		t.Fatalf("switchover through the fault point: %v", err)
	}
	<-halted
	o, _, err := c.Meta().GetOrdered(context.Background(), topic)
	if err != nil || !o.Blocked || o.Primary != testcluster.DCA {
		t.Fatalf("record at the fault point %+v, %v: want idc-a blocked", o, err)
	}
	c1.Close()
	testcluster.Eventually(t, c2.IsLeader, "c2 leads")
	testcluster.Eventually(t, func() bool {
		o, _, err := c.Meta().GetOrdered(context.Background(), topic)
		return err == nil && o.Primary == testcluster.DCB && !o.Blocked
	}, "c2 finished the switchover")
	after := acks()
	testcluster.Eventually(t, func() bool { return acks() >= after+100 }, "load on the new primary")
	close(stop)
	acked := finish()

	stored := storedBodies(t, c, testcluster.DCB, topic, queues)
	total := 0
	for key, bodies := range acked {
		got := stored[key]
		total += len(bodies)
		i := 0
		for _, b := range got { // acked bodies appear in order, once each
			if i < len(bodies) && b == bodies[i] {
				i++
			}
		}
		if i != len(bodies) {
			t.Fatalf("key %s: %d acked, only the first %d found in order in idc-b", key, len(bodies), i)
		}
		if len(got) != len(bodies) {
			t.Fatalf("key %s: %d stored in idc-b, %d acked (duplicates or unacked writes)", key, len(got), len(bodies))
		}
	}
	if total == 0 {
		t.Fatal("no message acked")
	}
	t.Logf("%d messages acked across the interrupted switchover, all in idc-b in order", total)
}

// BenchmarkSwitchoverPause moves an ordered sync topic back and forth
// between the DCs of the in-process topology and reports the write pause
// the controller measured (block to promote), beside its reference: two
// compare-and-swap writes of the fencing record, timed in the same run.
func BenchmarkSwitchoverPause(b *testing.B) {
	c := testcluster.New(b, testcluster.Options{})
	const topic = "bench-move"
	c.CreateTopic(b, meta.Topic{Name: topic, Queues: 4, Ordered: true, Primary: testcluster.DCA, Replication: meta.ReplicationSync})
	ctl := startRealB(b, c)
	to := []string{testcluster.DCB, testcluster.DCA}
	var pauses []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rep, err := ctl.Switchover(context.Background(), controller.SwitchoverRequest{Topic: topic, To: to[i%2], Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		pauses = append(pauses, time.Duration(rep.Transitions[0].PauseSeconds*float64(time.Second)))
	}
	b.StopTimer()
	slices.Sort(pauses)
	b.ReportMetric(float64(pauses[len(pauses)/2].Microseconds())/1000, "pause-p50-ms")
	b.ReportMetric(float64(pauses[len(pauses)-1].Microseconds())/1000, "pause-max-ms")
	// Reference: two CAS writes of the record, as the switchover does.
	var cas []time.Duration
	for range 20 {
		o, rev, err := c.Meta().GetOrdered(context.Background(), topic)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		o.Epoch++
		if rev, err = c.Meta().CASOrdered(context.Background(), topic, rev, o); err != nil {
			b.Fatal(err)
		}
		o.Epoch++
		if _, err = c.Meta().CASOrdered(context.Background(), topic, rev, o); err != nil {
			b.Fatal(err)
		}
		cas = append(cas, time.Since(start))
	}
	slices.Sort(cas)
	b.ReportMetric(float64(cas[len(cas)/2].Microseconds())/1000, "ref-2cas-p50-ms")
}

func startRealB(b *testing.B, c *testcluster.Cluster) *controller.Controller {
	cfg := controller.DefaultConfig()
	cfg.ID, cfg.APIURL = "bench", "http://bench.invalid:1"
	brokers := controller.NewGRPCBrokers()
	ctl, err := controller.New(cfg, controller.Deps{Store: c.Meta(), Brokers: brokers, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ctl.Run(context.Background()) }()
	b.Cleanup(func() { ctl.Close(); <-done; brokers.Close() })
	<-ctl.Ready()
	testcluster.Eventually(b, ctl.IsLeader, "the controller leads")
	return ctl
}
