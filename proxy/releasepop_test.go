package proxy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/proxy"
)

// A broker pops a message and answers, but the answer is lost on the way
// (here: dropped, and the call reported cancelled, as when a long poll
// ends the other brokers' calls while one answers). The proxy releases
// that pop, so the message is delivered again at once instead of after
// its invisibility (a minute here).
func TestLostPopAnswerReleased(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{BrokersPerDC: 1})
	c.CreateTopic(t, meta.Topic{Name: "jobs", Queues: 1})
	c.CreateGroup(t, meta.Group{Name: "workers", Subscriptions: []meta.Subscription{{Topic: "jobs"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.ProxyClient(t, dcA).Send(ctx, &proxypb.SendRequest{Topic: "jobs", Messages: []*proxypb.Message{{Body: []byte("job-1")}}}); err != nil {
		t.Fatal(err)
	}

	var dropped atomic.Int32
	loseFirstAnswer := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if !strings.HasSuffix(method, "/Pop") {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		err := invoker(context.WithoutCancel(ctx), method, req, reply, cc, opts...)
		if err == nil && len(reply.(*brokerpb.PopResponse).GetMessages()) > 0 && dropped.CompareAndSwap(0, 1) {
			return status.Error(codes.Canceled, "answer lost (test)")
		}
		return err
	}
	cache, err := meta.NewCache(ctx, c.Meta())
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	reg := prometheus.NewRegistry()
	px := startProxyWith(t, c, proxy.Deps{Meta: cache, Registerer: reg, Dial: func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(loseFirstAnswer))
	}})

	start := time.Now()
	var got *proxypb.ReceivedMessage
	for got == nil && time.Since(start) < 10*time.Second {
		res, err := px.Receive(ctx, &proxypb.ReceiveRequest{Group: "workers", Topic: "jobs", MaxMessages: 1, WaitMillis: 500,
			InvisibleMillis: 60000, ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetMessages()) > 0 {
			got = res.GetMessages()[0]
		}
	}
	if dropped.Load() != 1 {
		t.Fatal("no pop answer was dropped")
	}
	if got == nil || string(got.GetMessage().GetBody()) != "job-1" {
		t.Fatalf("the message of the lost answer did not come back within 10 s (invisibility 60 s): %v", got)
	}
	t.Logf("delivered again %v after its answer was lost", time.Since(start).Round(time.Millisecond))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "duomq_proxy_receive_handed_back_messages_total" && mf.GetMetric()[0].GetCounter().GetValue() == 1 {
			return
		}
	}
	t.Fatal("the released message is not counted as handed back")
}
