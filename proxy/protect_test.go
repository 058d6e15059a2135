package proxy_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/proxy"
	"github.com/duomq/duomq/proxy/auth"
)

// TestThrottling: a topic over its rate and a client over its rate are
// refused with RESOURCE_EXHAUSTED and a retry delay; nothing is stored;
// after the delay the call succeeds.
func TestThrottling(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Proxy: func(_ string, cfg *proxy.Config) {
		cfg.Throttle.Topics = map[string]proxy.Rate{"slow": {Rate: 2, Burst: 3}}
		cfg.Throttle.Client = proxy.Rate{Rate: 5, Burst: 20}
	}})
	c.CreateTopic(t, meta.Topic{Name: "slow", Queues: 1})
	c.CreateTopic(t, meta.Topic{Name: "fast", Queues: 1})
	px := c.ProxyClient(t, dcA)
	ctx := testCtx(t)
	for range 3 {
		send(t, px, "slow", body("x"))
	}
	_, err := px.Send(ctx, &proxypb.SendRequest{Topic: "slow", Messages: []*proxypb.Message{body("over")}})
	st := wantStatus(t, err, codes.ResourceExhausted, proxy.ReasonThrottled, `topic "slow"`)
	delay := retryDelay(st)
	if delay <= 0 || delay > 500*time.Millisecond {
		t.Fatalf("retry delay %v, want (0, 500ms]", delay)
	}
	storedExactly(t, c, dcA, "slow", 1, 3)
	time.Sleep(delay)
	send(t, px, "slow", body("after the delay"))

	var throttled error
	for i := range 40 {
		_, err := px.Send(ctx, &proxypb.SendRequest{Topic: "fast", ClientId: "greedy", Messages: []*proxypb.Message{body(strconv.Itoa(i))}})
		if err != nil {
			throttled = err
			break
		}
	}
	wantStatus(t, throttled, codes.ResourceExhausted, proxy.ReasonThrottled, `client "greedy"`)
	send(t, px, "fast", body("another client is not throttled"))
	if v := metric(t, c.ProxyMetrics(dcA), `duomq_proxy_throttled_total{kind="client"}`); v != 1 {
		t.Fatalf("client throttle metric %v", v)
	}
}

// TestBreaker: a broker that dies while routes still name it has its
// circuit breaker opened after failed calls; writes go on through the
// other broker; once the broker is back the breaker closes and it takes
// writes again.
func TestBreaker(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Proxy: func(_ string, cfg *proxy.Config) {
		cfg.RouteRefresh = time.Hour // keep naming the dead broker
		cfg.Breaker = proxy.BreakerConfig{Failures: 3, OpenFor: 500 * time.Millisecond, Probes: 1}
	}})
	c.CreateTopic(t, meta.Topic{Name: "steady", Queues: 2})
	px := c.ProxyClient(t, dcA)
	victim := c.BrokerNames(dcA)[0]
	gauge := `duomq_proxy_breaker_state{broker="` + victim + `",dc="idc-a"}`
	send(t, px, "steady", bodies(4, "warm")...)
	c.StopBroker(t, dcA, 0)

	testcluster.Eventually(t, func() bool {
		r := send(t, px, "steady", body("while down"))[0]
		if r.Broker == victim || r.Dc != dcA {
			t.Fatalf("write while %s is down: %+v", victim, r)
		}
		return metric(t, c.ProxyMetrics(dcA), gauge) == 2
	}, "breaker of %s open", victim)

	c.StartBroker(t, dcA, 0)
	testcluster.Eventually(t, func() bool {
		return send(t, px, "steady", body("back"))[0].Broker == victim
	}, "writes reach %s again", victim)
	if v := metric(t, c.ProxyMetrics(dcA), gauge); v != 0 {
		t.Fatalf("breaker state %v after the broker returned, want 0 (closed)", v)
	}
}

// TestAuthentication: with authentication on, every kind of bad
// credential is refused with UNAUTHENTICATED and its reason, a call the
// app may not make with PERMISSION_DENIED, and none stores anything.
func TestAuthentication(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Proxy: func(_ string, cfg *proxy.Config) {
		cfg.Auth = proxy.AuthConfig{Enabled: true, MaxSkew: 5 * time.Minute, Apps: []proxy.App{
			{Name: "shop", AccessKey: "AK-shop", Secret: "s3cret", Produce: []string{"orders"}},
			{Name: "billing", AccessKey: "AK-bill", Secret: "b1ll", ConsumeGroups: []string{"billing"}, ConsumeTopics: []string{"*"}},
		}}
	}})
	c.CreateTopic(t, meta.Topic{Name: "orders", Queues: 1})
	c.CreateTopic(t, meta.Topic{Name: "refunds", Queues: 1})
	c.CreateGroup(t, group("billing", "orders"))
	c.CreateGroup(t, group("audit", "orders"))
	shop := c.ProxyClient(t, dcA, grpc.WithPerRPCCredentials(auth.Credentials{AccessKey: "AK-shop", Secret: "s3cret"}))
	bill := c.ProxyClient(t, dcA, grpc.WithPerRPCCredentials(auth.Credentials{AccessKey: "AK-bill", Secret: "b1ll"}))
	plain := c.ProxyClient(t, dcA)
	sendReq := &proxypb.SendRequest{Topic: "orders", Messages: []*proxypb.Message{body("o")}}
	signed := func(key, secret string, at time.Time) context.Context {
		return metadata.AppendToOutgoingContext(testCtx(t), auth.Metadata(key, secret, "/duomq.proxy.v1.Proxy/Send", at)...)
	}
	cases := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"missing", func() error { _, err := plain.Send(testCtx(t), sendReq); return err }, codes.Unauthenticated, proxy.ReasonMissingCredentials},
		{"unknown key", func() error { _, err := plain.Send(signed("AK-who", "x", time.Now()), sendReq); return err }, codes.Unauthenticated, proxy.ReasonUnknownAccessKey},
		{"bad signature", func() error { _, err := plain.Send(signed("AK-shop", "wrong", time.Now()), sendReq); return err }, codes.Unauthenticated, proxy.ReasonBadSignature},
		{"clock skew", func() error {
			_, err := plain.Send(signed("AK-shop", "s3cret", time.Now().Add(-10*time.Minute)), sendReq)
			return err
		}, codes.Unauthenticated, proxy.ReasonClockSkew},
		{"signed for another method", func() error {
			ctx := metadata.AppendToOutgoingContext(testCtx(t), auth.Metadata("AK-shop", "s3cret", "/duomq.proxy.v1.Proxy/Heartbeat", time.Now())...)
			_, err := plain.Send(ctx, sendReq)
			return err
		}, codes.Unauthenticated, proxy.ReasonBadSignature},
		{"produce to a topic not granted", func() error {
			_, err := shop.Send(testCtx(t), &proxypb.SendRequest{Topic: "refunds", Messages: []*proxypb.Message{body("r")}})
			return err
		}, codes.PermissionDenied, proxy.ReasonPermissionDenied},
		{"consumer may not produce", func() error { _, err := bill.Send(testCtx(t), sendReq); return err }, codes.PermissionDenied, proxy.ReasonPermissionDenied},
		{"consume as a group not granted", func() error {
			_, err := bill.Receive(testCtx(t), &proxypb.ReceiveRequest{Group: "audit", Topic: "orders"})
			return err
		}, codes.PermissionDenied, proxy.ReasonPermissionDenied},
		{"trace a topic not granted", func() error {
			_, err := shop.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Topic: "refunds", Id: "m1"})
			return err
		}, codes.PermissionDenied, proxy.ReasonPermissionDenied},
		{"trace every topic without all of them", func() error {
			_, err := shop.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Id: "m1"})
			return err
		}, codes.PermissionDenied, proxy.ReasonPermissionDenied},
		{"trace a granted topic", func() error {
			_, err := shop.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Topic: "orders", Id: "m1"})
			return err
		}, codes.NotFound, proxy.ReasonMessageNotFound},
		{"trace every topic with all of them", func() error {
			_, err := bill.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Id: "m1"})
			return err
		}, codes.NotFound, proxy.ReasonMessageNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantStatus(t, tc.call(), tc.code, tc.reason) })
	}
	for _, topic := range []string{"orders", "refunds"} {
		if n := stored(t, c, dcA, topic, 1); n != 0 {
			t.Fatalf("%d messages of %s stored by refused calls", n, topic)
		}
	}
	send(t, shop, "orders", body("allowed"))
	if got := receive(t, bill, "billing", "orders", 1, 2*time.Second, time.Second); len(got) != 1 {
		t.Fatalf("authorized consumer got %v", got)
	}
	if v := metric(t, c.ProxyMetrics(dcA), `duomq_proxy_auth_refusals_total{reason="PERMISSION_DENIED"}`); v != 5 {
		t.Fatalf("permission refusals metric %v, want 5", v)
	}
}
