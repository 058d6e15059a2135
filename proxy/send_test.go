package proxy_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/proxy"
)

// TestUnorderedSendRouting: unordered writes stay in the proxy's DC; when
// the DC is blocked by the traffic policy or draining they go to the other
// DC, marked as a fallback with the reason; traffic weights share writes.
func TestUnorderedSendRouting(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "clicks", Queues: 4})
	ctx, store := testCtx(t), c.Meta()
	pxA := c.ProxyClient(t, dcA)

	for _, r := range send(t, pxA, "clicks", bodies(8, "local")...) {
		if r.Dc != dcA || r.Fallback || r.FallbackReason != "" || r.Topic != "clicks" || !strings.HasPrefix(r.Broker, "broker-a-") {
			t.Fatalf("local write: %+v", r)
		}
	}
	brokers := map[string]bool{}
	for _, r := range send(t, pxA, "clicks", bodies(8, "rr")...) {
		brokers[r.Broker] = true
	}
	for range 4 {
		brokers[send(t, pxA, "clicks", body("rr"))[0].Broker] = true
	}
	if len(brokers) != 2 {
		t.Fatalf("round robin reached brokers %v, want both of idc-a", brokers)
	}

	rev, err := store.CASTraffic(ctx, 0, meta.Traffic{BlockedDCs: []string{dcA}})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitMeta(t, rev)
	for _, r := range send(t, pxA, "clicks", bodies(3, "blocked")...) {
		if r.Dc != dcB || !r.Fallback || !strings.Contains(r.FallbackReason, "blocked for writes") {
			t.Fatalf("write while idc-a is blocked: %+v", r)
		}
	}
	if v := metric(t, c.ProxyMetrics(dcA), `duomq_proxy_fallback_messages_total{dc="idc-b",topic="clicks"}`); v != 3 {
		t.Fatalf("fallback metric %v, want 3", v)
	}

	tr, trev, err := store.GetTraffic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr.BlockedDCs = nil
	if rev, err = store.CASTraffic(ctx, trev, tr); err != nil {
		t.Fatal(err)
	}
	if rev, err = store.SetDCState(ctx, dcA, meta.DCDraining, "test"); err != nil {
		t.Fatal(err)
	}
	c.WaitMeta(t, rev)
	r := send(t, pxA, "clicks", body("draining"))[0]
	if r.Dc != dcB || !r.Fallback || !strings.Contains(r.FallbackReason, "draining") {
		t.Fatalf("write while idc-a drains: %+v", r)
	}

	if _, err = store.SetDCState(ctx, dcA, meta.DCActive, "test"); err != nil {
		t.Fatal(err)
	}
	tr, trev, _ = store.GetTraffic(ctx)
	tr.Weights = map[string]int{dcA: 1, dcB: 1}
	if rev, err = store.CASTraffic(ctx, trev, tr); err != nil {
		t.Fatal(err)
	}
	c.WaitMeta(t, rev)
	perDC := map[string]int{}
	for range 10 {
		r := send(t, pxA, "clicks", body("w"))[0]
		perDC[r.Dc]++
		if r.Dc == dcB && !strings.Contains(r.FallbackReason, "weights") {
			t.Fatalf("weighted write to idc-b: %+v", r)
		}
	}
	if perDC[dcA] != 5 || perDC[dcB] != 5 {
		t.Fatalf("equal weights split 10 writes as %v", perDC)
	}
}

// TestIdempotentSend: a retried send with the same id and idempotent set
// reaches the same broker, which reports the original placement.
func TestIdempotentSend(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "payments", Queues: 4})
	px := c.ProxyClient(t, dcA)
	msgs := []*proxypb.Message{{Id: "pay-1", Body: []byte("1")}, {Id: "pay-2", Body: []byte("2")}, {Id: "pay-3", Body: []byte("3")}}
	first, err := px.Send(testCtx(t), &proxypb.SendRequest{Topic: "payments", Messages: msgs, Idempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	again, err := px.Send(testCtx(t), &proxypb.SendRequest{Topic: "payments", Messages: msgs, Idempotent: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Results {
		f := first.Results[i]
		if f.Duplicate || !r.Duplicate || r.Id != f.Id || r.Broker != f.Broker || r.QueueId != f.QueueId || r.Offset != f.Offset {
			t.Fatalf("message %d: first %+v, retry %+v", i, f, r)
		}
	}
	storedExactly(t, c, dcA, "payments", 4, 3)
}

// TestBadSendsChangeNothing: oversize bodies, reserved properties, unknown
// topics and malformed requests are refused with a clear error and
// nothing of the request is stored.
func TestBadSendsChangeNothing(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "small", Queues: 2, MaxMessageBytes: 1024})
	c.CreateTopic(t, meta.Topic{Name: "seq", Queues: 2, Ordered: true, Primary: dcA})
	px := c.ProxyClient(t, dcA)
	ctx := testCtx(t)
	big := make([]byte, 1025)
	cases := []struct {
		name      string
		req       *proxypb.SendRequest
		code      codes.Code
		reason    string
		fragments []string
	}{
		{"oversize in a batch", &proxypb.SendRequest{Topic: "small", Messages: []*proxypb.Message{body("ok"), {Body: big}}},
			codes.InvalidArgument, proxy.ReasonMessageTooLarge, []string{"1025 bytes", "limit of 1024 bytes", "message 1", "nothing was sent"}},
		{"reserved property", &proxypb.SendRequest{Topic: "small", Messages: []*proxypb.Message{{Body: []byte("x"), Properties: map[string]string{"__DELIVER_AT": "1"}}}},
			codes.InvalidArgument, proxy.ReasonReservedProperty, []string{"__DELIVER_AT", "reserved"}},
		{"unknown topic", &proxypb.SendRequest{Topic: "nope", Messages: []*proxypb.Message{body("x")}},
			codes.NotFound, proxy.ReasonTopicNotFound, []string{"duomq topic create nope"}},
		{"bad topic name", &proxypb.SendRequest{Topic: "a/b", Messages: []*proxypb.Message{body("x")}},
			codes.InvalidArgument, proxy.ReasonInvalidName, nil},
		{"system topic", &proxypb.SendRequest{Topic: "%DLQ%g", Messages: []*proxypb.Message{body("x")}},
			codes.InvalidArgument, proxy.ReasonInvalidName, []string{"system topic"}},
		{"empty batch", &proxypb.SendRequest{Topic: "small"}, codes.InvalidArgument, proxy.ReasonInvalidArgument, []string{"no messages"}},
		{"bad id", &proxypb.SendRequest{Topic: "small", Messages: []*proxypb.Message{{Id: "has space", Body: []byte("x")}}},
			codes.InvalidArgument, proxy.ReasonInvalidArgument, []string{"id"}},
		{"ordered without key", &proxypb.SendRequest{Topic: "seq", Messages: []*proxypb.Message{body("x")}},
			codes.InvalidArgument, proxy.ReasonInvalidArgument, []string{"sharding_key"}},
		{"ordered with delay", &proxypb.SendRequest{Topic: "seq", Messages: []*proxypb.Message{{ShardingKey: "k", DeliverAtUnixNano: 1 << 62, Body: []byte("x")}}},
			codes.InvalidArgument, proxy.ReasonInvalidArgument, []string{"delayed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := px.Send(ctx, tc.req)
			wantStatus(t, err, tc.code, tc.reason, tc.fragments...)
		})
	}
	for _, dc := range c.DCs() {
		for _, topic := range []string{"small", "seq"} {
			if n := stored(t, c, dc, topic, 2); n != 0 {
				t.Fatalf("%d messages of %s stored in %s after refused sends", n, topic, dc)
			}
		}
	}
}

// TestFallbackWhenBrokersFail: with every broker of the proxy's DC gone,
// unordered writes go on in the other DC, saying why.
func TestFallbackWhenBrokersFail(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "logs", Queues: 2})
	pxA := c.ProxyClient(t, dcA)
	send(t, pxA, "logs", body("before"))
	c.StopBroker(t, dcA, 0)
	c.StopBroker(t, dcA, 1)
	for i := range 5 {
		r := send(t, pxA, "logs", body("during"))[0]
		if r.Dc != dcB || !r.Fallback || !strings.Contains(r.FallbackReason, "idc-a") {
			t.Fatalf("write %d with idc-a's brokers gone: %+v", i, r)
		}
	}
	c.StartBroker(t, dcA, 0)
	testcluster.Eventually(t, func() bool { return send(t, pxA, "logs", body("after"))[0].Dc == dcA }, "writes back in idc-a")
}
