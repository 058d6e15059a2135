package proxy_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/proxy"
)

// TestRedeliveryAfterInvisibility: a message received and not acked is
// delivered again once its invisibility ends, under its original id and
// topic, with its attempt and reconsume count; an ack settles it for good.
func TestRedeliveryAfterInvisibility(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "jobs", Queues: 2})
	c.CreateGroup(t, group("workers", "jobs"))
	px := c.ProxyClient(t, dcA)
	id := send(t, px, "jobs", &proxypb.Message{Body: []byte("job"), Properties: map[string]string{"trace": "t1"}})[0].Id

	first := receive(t, px, "workers", "jobs", 1, 2*time.Second, time.Second)
	if len(first) != 1 || first[0].Attempt != 1 || first[0].Message.Id != id || first[0].Message.Properties["trace"] != "t1" {
		t.Fatalf("first delivery: %v", first)
	}
	if again := receive(t, px, "workers", "jobs", 1, 0, time.Second); len(again) != 0 {
		t.Fatalf("delivered again while invisible: %v", again)
	}
	var second []*proxypb.ReceivedMessage
	testcluster.Eventually(t, func() bool {
		second = receive(t, px, "workers", "jobs", 1, 500*time.Millisecond, 30*time.Second)
		return len(second) == 1
	}, "redelivery after the invisibility")
	m := second[0]
	if m.Message.Id != id || m.Message.Topic != "jobs" || m.Attempt != 2 || m.Message.ReconsumeTimes != 1 || string(m.Message.Body) != "job" {
		t.Fatalf("redelivery: attempt %d %+v", m.Attempt, m.Message)
	}
	for k := range m.Message.Properties {
		if len(k) >= 2 && k[:2] == "__" {
			t.Fatalf("reserved property %s shown to the client", k)
		}
	}
	if _, err := px.Ack(testCtx(t), &proxypb.AckRequest{Group: "workers", Topic: "jobs", ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if more := receive(t, px, "workers", "jobs", 1, 1500*time.Millisecond, time.Second); len(more) != 0 {
		t.Fatalf("acked message delivered again: %v", more)
	}
	_, err := px.Ack(testCtx(t), &proxypb.AckRequest{Group: "workers", Topic: "jobs", ReceiptHandle: "garbage"})
	wantStatus(t, err, codes.InvalidArgument, proxy.ReasonBadReceiptHandle)
}

// TestDeadLetterAndRedrive: after max attempts a message goes to the
// group's dead-letter topic; listing shows it under its original topic and
// id; re-driving sends it back once, and a second re-drive finds nothing.
func TestDeadLetterAndRedrive(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "mail", Queues: 1})
	g := group("senders", "mail")
	g.MaxRetries = 1
	c.CreateGroup(t, g)
	px := c.ProxyClient(t, dcA)
	ctx := testCtx(t)
	ids := map[string]bool{}
	for _, r := range send(t, px, "mail", body("poison"), body("poison-2")) {
		ids[r.Id] = true
	}
	nacks := 0
	testcluster.Eventually(t, func() bool {
		for _, m := range receive(t, px, "senders", "mail", 8, 300*time.Millisecond, 30*time.Second) {
			if _, err := px.ChangeInvisibleDuration(ctx, &proxypb.ChangeInvisibleDurationRequest{
				Group: "senders", Topic: "mail", ReceiptHandle: m.ReceiptHandle, InvisibleMillis: 0}); err != nil {
				t.Fatal(err)
			}
			nacks++
		}
		res, err := px.ListDeadLetters(ctx, &proxypb.ListDeadLettersRequest{Group: "senders"})
		return err == nil && len(res.Messages) == 2
	}, "both messages dead-lettered")
	if nacks != 4 {
		t.Fatalf("%d deliveries before dead-lettering, want 4 (2 attempts each)", nacks)
	}
	dl, err := px.ListDeadLetters(ctx, &proxypb.ListDeadLettersRequest{Group: "senders"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range dl.Messages {
		if m.Topic != "mail" || !ids[m.Id] || m.Dc != dcA {
			t.Fatalf("dead letter %+v", m)
		}
	}

	res, err := px.RedriveDeadLetters(ctx, &proxypb.RedriveDeadLettersRequest{Group: "senders", Ids: []string{dl.Messages[1].Id}})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("re-drive one: %v %v", res, err)
	}
	left, err := px.ListDeadLetters(ctx, &proxypb.ListDeadLettersRequest{Group: "senders"})
	if err != nil || len(left.Messages) != 1 || left.Messages[0].Id != dl.Messages[0].Id {
		t.Fatalf("dead letters after re-driving one: %v %v", left, err)
	}
	res, err = px.RedriveDeadLetters(ctx, &proxypb.RedriveDeadLettersRequest{Group: "senders"})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("re-drive the rest: %v %v", res, err)
	}
	if res, err = px.RedriveDeadLetters(ctx, &proxypb.RedriveDeadLettersRequest{Group: "senders"}); err != nil || res.Redriven != 0 {
		t.Fatalf("second re-drive: %v %v", res, err)
	}
	got := receive(t, px, "senders", "mail", 8, 2*time.Second, 30*time.Second)
	testcluster.Eventually(t, func() bool {
		if len(got) >= 2 {
			return true
		}
		got = append(got, receive(t, px, "senders", "mail", 8, 500*time.Millisecond, 30*time.Second)...)
		return len(got) >= 2
	}, "re-driven messages received")
	for _, m := range got {
		if !ids[m.Message.Id] || m.Attempt != 1 {
			t.Fatalf("re-driven message: attempt %d %+v", m.Attempt, m.Message)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d re-driven messages received, want 2", len(got))
	}
}

// TestDelayedDelivery: a message with a deliver-at time is not received
// before it.
func TestDelayedDelivery(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "reminders", Queues: 2})
	c.CreateGroup(t, group("notifier", "reminders"))
	pxB := c.ProxyClient(t, dcB)
	at := time.Now().Add(2 * time.Second)
	send(t, pxB, "reminders", &proxypb.Message{Body: []byte("later"), DeliverAtUnixNano: at.UnixNano()})
	if early := receive(t, pxB, "notifier", "reminders", 1, 500*time.Millisecond, time.Second); len(early) != 0 {
		t.Fatalf("delayed message received %v early", time.Until(at))
	}
	var got []*proxypb.ReceivedMessage
	testcluster.Eventually(t, func() bool {
		got = receive(t, pxB, "notifier", "reminders", 1, 500*time.Millisecond, 30*time.Second)
		return len(got) == 1
	}, "delayed message delivered")
	if now := time.Now(); now.Before(at) || string(got[0].Message.Body) != "later" || got[0].Message.DeliverAtUnixNano != at.UnixNano() {
		t.Fatalf("delivered at %v (due %v): %+v", now, at, got[0].Message)
	}
}

// TestReceiveGovernance: unknown groups and topics, and topics a group
// does not subscribe to, are refused with the command that fixes them; a
// group with no subscriptions accepts any topic.
func TestReceiveGovernance(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "a", Queues: 1})
	c.CreateTopic(t, meta.Topic{Name: "b", Queues: 1})
	c.CreateGroup(t, group("ga", "a"))
	px := c.ProxyClient(t, dcA)
	ctx := testCtx(t)
	_, err := px.Receive(ctx, &proxypb.ReceiveRequest{Group: "nobody", Topic: "a"})
	wantStatus(t, err, codes.NotFound, proxy.ReasonGroupNotFound, "duomq group create nobody")
	_, err = px.Receive(ctx, &proxypb.ReceiveRequest{Group: "ga", Topic: "zzz"})
	wantStatus(t, err, codes.NotFound, proxy.ReasonTopicNotFound, "duomq topic create zzz")
	_, err = px.Receive(ctx, &proxypb.ReceiveRequest{Group: "ga", Topic: "b"})
	wantStatus(t, err, codes.FailedPrecondition, proxy.ReasonNotSubscribed, "duomq group update ga --topic b")
	// A group created without subscriptions takes the topics its consumers name.
	c.CreateGroup(t, meta.Group{Name: "open"})
	if _, err := px.Receive(ctx, &proxypb.ReceiveRequest{Group: "open", Topic: "b"}); err != nil {
		t.Fatalf("receive for a group without subscriptions: %v", err)
	}
	_, err = px.ListDeadLetters(ctx, &proxypb.ListDeadLettersRequest{Group: "nobody"})
	wantStatus(t, err, codes.NotFound, proxy.ReasonGroupNotFound)
}

// TestIDCAwareConsumption: while idc-b has no live consumers of a group,
// idc-a's consumers also receive idc-b's messages; once a consumer of the
// group is live in idc-b, idc-b's messages stay there.
func TestIDCAwareConsumption(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "events", Queues: 2})
	c.CreateGroup(t, group("analytics", "events"))
	pxA, pxB := c.ProxyClient(t, dcA), c.ProxyClient(t, dcB)
	for _, r := range send(t, pxB, "events", bodies(10, "b")...) {
		if r.Dc != dcB {
			t.Fatalf("write through idc-b's proxy: %+v", r)
		}
	}
	got := receiveAcked(t, pxA, "analytics", "events", 10, 15*time.Second)
	if len(got) != 10 {
		t.Fatalf("idc-a's consumer got %d of idc-b's 10 messages while idc-b has no consumers", len(got))
	}
	for _, m := range receive(t, pxA, "analytics", "events", 1, 0, time.Second) {
		t.Fatalf("extra message %v", m)
	}

	// A consumer in idc-b keeps its group live there.
	ctx, cancel := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var mu sync.Mutex
	var gotB []string
	wg.Go(func() {
		for ctx.Err() == nil {
			res, err := pxB.Receive(ctx, &proxypb.ReceiveRequest{Group: "analytics", Topic: "events", MaxMessages: 16, WaitMillis: 200,
				ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST, ClientId: "consumer-b"})
			if err != nil {
				continue
			}
			for _, m := range res.Messages {
				pxB.Ack(ctx, &proxypb.AckRequest{Group: "analytics", Topic: "events", ReceiptHandle: m.ReceiptHandle})
				mu.Lock()
				gotB = append(gotB, string(m.Message.Body))
				mu.Unlock()
			}
		}
	})
	key := c.Meta().Key(meta.KeyConsumers) + "analytics/" + dcB + "/"
	testcluster.Eventually(t, func() bool {
		res, err := c.Meta().Client().Get(ctx, key, clientv3.WithPrefix())
		return err == nil && res.Count > 0
	}, "idc-b's consumer published under %s", key)
	time.Sleep(1500 * time.Millisecond) // two presence reads of idc-a's proxy (every consumer-ttl/4)

	send(t, pxB, "events", bodies(10, "b2")...)
	fromA := receiveAcked(t, pxA, "analytics", "events", 1, 2*time.Second)
	if len(fromA) != 0 {
		t.Fatalf("idc-a's consumer got %v of idc-b's messages while idc-b has a live consumer", fromA)
	}
	testcluster.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(gotB) == 10
	}, "idc-b's consumer gets idc-b's messages")
	mu.Lock()
	sort.Strings(gotB)
	mu.Unlock()
	if gotB[0] != "b2-0" {
		t.Fatalf("idc-b's consumer got %v", gotB)
	}
}

// TestClientsAndIDC: heartbeats list clients with their details; IP
// addresses resolve to the DC whose CIDRs contain them.
func TestClientsAndIDC(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	px := c.ProxyClient(t, dcB)
	ctx := testCtx(t)
	for i := range 2 {
		res, err := px.Heartbeat(ctx, &proxypb.HeartbeatRequest{Client: &proxypb.ClientInfo{
			ClientId: fmt.Sprintf("c%d", i), App: "shop", Idc: dcB, IdcSource: "ip", SdkVersion: "v0.1.0",
			ProducerTopics: []string{"orders"}, ConsumerGroups: []string{"billing"},
		}})
		if err != nil || res.Dc != dcB {
			t.Fatalf("heartbeat: %v %v", res, err)
		}
	}
	list, err := px.ListClients(ctx, &proxypb.ListClientsRequest{})
	if err != nil || len(list.Clients) != 2 {
		t.Fatalf("list clients: %v %v", list, err)
	}
	cl := list.Clients[0]
	if cl.Client.ClientId != "c0" || cl.Client.App != "shop" || cl.ProxyDc != dcB || cl.Client.Host == "" || cl.LastHeartbeatUnixNano == 0 {
		t.Fatalf("client status %+v", cl)
	}
	_, err = px.Heartbeat(ctx, &proxypb.HeartbeatRequest{Client: &proxypb.ClientInfo{}})
	wantStatus(t, err, codes.InvalidArgument, proxy.ReasonInvalidArgument, "client_id")

	cases := []struct {
		addrs       []string
		idc, ip, nw string
	}{
		{[]string{"10.0.0.1", "127.2.3.4"}, dcB, "127.2.3.4", "127.2.0.0/16"},
		{[]string{"127.1.0.9"}, dcA, "127.1.0.9", "127.1.0.0/16"},
		{[]string{"::ffff:127.1.0.9"}, dcA, "::ffff:127.1.0.9", "127.1.0.0/16"},
		{[]string{"192.168.1.1"}, "", "", ""},
		{nil, "", "", ""},
	}
	for _, tc := range cases {
		res, err := px.ResolveIDC(ctx, &proxypb.ResolveIDCRequest{Addresses: tc.addrs})
		if err != nil || res.Idc != tc.idc || res.MatchedAddress != tc.ip || res.MatchedCidr != tc.nw {
			t.Fatalf("resolve %v: %v %v", tc.addrs, res, err)
		}
	}
	_, err = px.ResolveIDC(ctx, &proxypb.ResolveIDCRequest{Addresses: []string{"not-an-ip"}})
	wantStatus(t, err, codes.InvalidArgument, proxy.ReasonInvalidArgument, "not-an-ip")
}

// TestLatencyHistograms: a send is timed once per storing DC, and every
// delivery's delay since the store is recorded, by topic and DC.
func TestLatencyHistograms(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "jobs", Queues: 2})
	c.CreateGroup(t, group("workers", "jobs"))
	px := c.ProxyClient(t, dcA)
	send(t, px, "jobs", bodies(3, "job")...)
	if n := len(receiveAcked(t, px, "workers", "jobs", 3, 10*time.Second)); n != 3 {
		t.Fatalf("received %d of 3", n)
	}
	url := c.ProxyMetrics(dcA)
	if v := metric(t, url, `duomq_proxy_send_duration_seconds_count{dc="idc-a",topic="jobs"}`); v != 1 {
		t.Fatalf("send duration count %v, want 1 (one call)", v)
	}
	if v := metric(t, url, `duomq_proxy_delivery_delay_seconds_count{dc="idc-a",topic="jobs"}`); v != 3 {
		t.Fatalf("delivery delay count %v, want 3", v)
	}
	if v := metric(t, url, `duomq_proxy_delivery_delay_seconds_sum{dc="idc-a",topic="jobs"}`); v < 0 || v > 30 {
		t.Fatalf("delivery delay sum %v s for 3 messages received within 10 s", v)
	}
}
