package testcluster_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/leakcheck"
	"github.com/duomq/duomq/internal/testcluster"
)

// TestMain checks for leaked goroutines (internal/leakcheck says which
// HTTP keep-alive goroutines it ignores).
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

// TestCluster starts the topology, sends and receives through each DC's
// proxy, restarts a broker on its address, and closes quickly.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := testcluster.New(t, testcluster.Options{})
	t.Logf("started in %v", time.Since(start))
	c.CreateTopic(t, meta.Topic{Name: "smoke", Queues: 2})
	c.CreateGroup(t, meta.Group{Name: "g", Subscriptions: []meta.Subscription{{Topic: "smoke"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, dc := range c.DCs() {
		px := c.ProxyClient(t, dc)
		res, err := px.Send(ctx, &proxypb.SendRequest{Topic: "smoke", Messages: []*proxypb.Message{{Body: []byte("hello " + dc)}}})
		if err != nil {
			t.Fatalf("send through %s: %v", dc, err)
		}
		if r := res.Results[0]; r.Dc != dc || r.Fallback {
			t.Fatalf("send through %s: %+v", dc, r)
		}
		got, err := px.Receive(ctx, &proxypb.ReceiveRequest{Group: "g", Topic: "smoke", MaxMessages: 8, WaitMillis: 2000,
			ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST})
		if err != nil || len(got.Messages) != 1 || string(got.Messages[0].Message.Body) != "hello "+dc {
			t.Fatalf("receive through %s: %v %v", dc, got, err)
		}
		if _, err := px.Ack(ctx, &proxypb.AckRequest{Group: "g", Topic: "smoke", ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
			t.Fatalf("ack through %s: %v", dc, err)
		}
	}

	// Each proxy keeps a liveness record in its DC (the controller counts
	// live proxies with min-live-proxies).
	for _, dc := range c.DCs() {
		testcluster.Eventually(t, func() bool {
			resp, err := c.Meta().Client().Get(ctx, c.Meta().Key(meta.KeyProxies+dc+"/"), clientv3.WithPrefix(), clientv3.WithCountOnly())
			return err == nil && resp.Count == 1
		}, "one proxy liveness record in %s", dc)
	}

	addr := c.Brokers(testcluster.DCA)[0]
	c.StopBroker(t, testcluster.DCA, 0)
	c.StartBroker(t, testcluster.DCA, 0)
	if got := c.Brokers(testcluster.DCA)[0]; got != addr {
		t.Fatalf("restarted broker at %s, was %s", got, addr)
	}
	bc := c.BrokerClient(t, testcluster.DCA, 0)
	testcluster.Eventually(t, func() bool {
		_, err := bc.GetBrokerInfo(ctx, &brokerpb.GetBrokerInfoRequest{})
		return err == nil
	}, "restarted broker answers")

	start = time.Now()
	c.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("close took %v", d)
	}
	t.Logf("closed in %v", time.Since(start))
}
