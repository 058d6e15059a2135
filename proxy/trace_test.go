package proxy_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/proxy"
)

func traceGroup(m *proxypb.MessageTrace, name string) *proxypb.GroupTrace {
	for _, g := range m.GetGroups() {
		if g.GetGroup() == name {
			return g
		}
	}
	return nil
}

// traceUntil traces through px until cond holds for the single message
// found, and returns that trace.
func traceUntil(t *testing.T, px proxypb.ProxyClient, req *proxypb.TraceMessageRequest, what string, cond func(*proxypb.MessageTrace) bool) *proxypb.MessageTrace {
	t.Helper()
	var last *proxypb.MessageTrace
	testcluster.Eventually(t, func() bool {
		res, err := px.TraceMessage(testCtx(t), req)
		if err != nil || len(res.GetMessages()) != 1 || len(res.GetUnreachable()) > 0 {
			return false
		}
		last = res.GetMessages()[0]
		return cond(last)
	}, "trace of %v: %s", req, what)
	return last
}

// consumed reports whether the group's delivery of the record in dc is
// past its committed offset (synced: through the offset sync).
func consumed(g *proxypb.GroupTrace, dc string, synced bool) bool {
	for _, d := range g.GetDeliveries() {
		if d.GetRecord().GetDc() == dc && d.GetConsumed() && d.GetSynced() == synced {
			return true
		}
	}
	return false
}

// TestTraceMessage: an ordered message replicated to idc-b, acked by one
// group, dead-lettered by another after a retry and never read by a
// third, traced through idc-b's proxy by id and by key.
func TestTraceMessage(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "tr-o", Queues: 2, Ordered: true, Primary: dcA, Replication: meta.ReplicationAsync})
	c.CreateGroup(t, group("tr-ok", "tr-o"))
	c.CreateGroup(t, group("tr-idle", "tr-o"))
	dead := group("tr-dead", "tr-o")
	dead.MaxRetries = 1
	c.CreateGroup(t, dead)
	pxA, pxB := c.ProxyClient(t, dcA), c.ProxyClient(t, dcB)
	sent := send(t, pxA, "tr-o", &proxypb.Message{ShardingKey: "s1", Keys: []string{"order-42"}, Body: []byte("x")})[0]
	byID := &proxypb.TraceMessageRequest{Id: sent.Id}

	traceUntil(t, pxB, byID, "replicated to idc-b", func(m *proxypb.MessageTrace) bool { return len(recordsIn(m, dcB)) > 0 })
	if got := receiveAcked(t, pxA, "tr-ok", "tr-o", 1, 10*time.Second); len(got) != 1 {
		t.Fatalf("tr-ok received %v", got)
	}
	nackOne(t, pxA, "tr-dead", "tr-o", 1)
	nackOne(t, pxA, "tr-dead", "tr-o", 2)

	m := traceUntil(t, pxB, byID, "acked, synced and dead-lettered", func(m *proxypb.MessageTrace) bool {
		ok, dl := traceGroup(m, "tr-ok"), traceGroup(m, "tr-dead")
		return ok != nil && consumed(ok, dcA, false) && consumed(ok, dcB, true) && dl != nil && len(dl.GetDeadLetters()) == 1
	})
	if m.GetTopic() != "tr-o" || m.GetBornDc() != dcA || m.GetKeys()[0] != "order-42" {
		t.Fatalf("message: %v", m)
	}
	lead := m.GetRecords()[0]
	if lead.GetDc() != dcA || lead.GetBroker() != sent.Broker || lead.GetReplicated() || lead.GetQueueId() != sent.QueueId || lead.GetOffset() != sent.Offset {
		t.Fatalf("original record %v, sent %v", lead, sent)
	}
	if len(recordsIn(m, dcA)) != 1 {
		t.Fatalf("records in %s: %v", dcA, recordsIn(m, dcA))
	}
	// While the brokers of idc-b come up one by one, the queue's placement
	// there may move, and the replicator then copies it to each in turn.
	for _, follow := range recordsIn(m, dcB) {
		if !follow.GetReplicated() || follow.GetQueueId() != lead.GetQueueId() || follow.GetOffset() != lead.GetOffset() ||
			follow.GetStoredIn() != "tr-o" || follow.GetReplicatedAtUnixNano() < lead.GetStoreTimeUnixNano() {
			t.Fatalf("replicated record %v of %v", follow, lead)
		}
	}
	ok := traceGroup(m, "tr-ok")
	if d := ok.GetDeliveries()[0]; !ok.GetSubscribed() || d.GetConsumedByUnixNano() < lead.GetStoreTimeUnixNano() || len(ok.GetRetries()) != 0 {
		t.Fatalf("tr-ok: %v", ok)
	}
	idle := traceGroup(m, "tr-idle")
	if idle == nil || !idle.GetSubscribed() || len(idle.GetDeliveries()) != len(m.GetRecords()) {
		t.Fatalf("tr-idle: %v", idle)
	}
	for _, d := range idle.GetDeliveries() {
		if d.GetConsumed() || d.GetInFlight() || d.GetCommittedOffset() != -1 {
			t.Fatalf("tr-idle never read the queue: %v", d)
		}
	}
	dl := traceGroup(m, "tr-dead")
	if len(dl.GetRetries()) != 1 || dl.GetRetries()[0].GetRecord().GetStoredIn() != names.RetryTopic("tr-dead") ||
		dl.GetRetries()[0].GetRecord().GetId() != sent.Id+":2" || dl.GetRetries()[0].GetRecord().GetReconsumeTimes() != 1 {
		t.Fatalf("tr-dead retries: %v", dl.GetRetries())
	}
	letter := dl.GetDeadLetters()[0]
	if r := letter.GetRecord(); r.GetStoredIn() != names.DLQTopic("tr-dead") || r.GetDc() != dcA || r.GetReconsumeTimes() != 2 || letter.GetConsumed() {
		t.Fatalf("tr-dead dead letter: %v", letter)
	}

	byKey, err := pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Topic: "tr-o", Key: "order-42"})
	if err != nil || len(byKey.GetMessages()) != 1 {
		t.Fatalf("trace by key: %v %v", byKey, err)
	}
	if k := byKey.GetMessages()[0]; k.GetId() != sent.Id || len(k.GetRecords()) != len(m.GetRecords()) || len(traceGroup(k, "tr-dead").GetDeadLetters()) != 1 {
		t.Fatalf("trace by key: %v", k)
	}
	if _, err := pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Topic: "tr-o", Id: sent.Id}); err != nil {
		t.Fatalf("trace by id in its topic: %v", err)
	}

	t.Run("Refusals", func(t *testing.T) {
		_, err := pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Topic: "no-such-topic", Id: sent.Id})
		wantStatus(t, err, codes.NotFound, proxy.ReasonTopicNotFound, "no-such-topic")
		_, err = pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Id: "no-such-message"})
		wantStatus(t, err, codes.NotFound, proxy.ReasonMessageNotFound, "no-such-message")
		_, err = pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Topic: "tr-o", Key: "no-such-key"})
		wantStatus(t, err, codes.NotFound, proxy.ReasonMessageNotFound, "no-such-key")
		_, err = pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Id: "bad id"})
		wantStatus(t, err, codes.InvalidArgument, proxy.ReasonInvalidArgument, "printable")
		_, err = pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Key: "order-42"})
		wantStatus(t, err, codes.InvalidArgument, proxy.ReasonInvalidArgument, "topic")
		_, err = pxA.TraceMessage(testCtx(t), &proxypb.TraceMessageRequest{Topic: "tr-o", Id: "a", Key: "b"})
		wantStatus(t, err, codes.InvalidArgument, proxy.ReasonInvalidArgument)
	})
}

// TestTraceMirror: a replicated unordered topic's message has its copy in
// the other DC's mirror, at the same queue and offset.
func TestTraceMirror(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "tr-u", Queues: 2, Replication: meta.ReplicationAsync})
	px := c.ProxyClient(t, dcB)
	sent := send(t, px, "tr-u", body("y"))[0]
	other := dcA
	if sent.Dc == dcA {
		other = dcB
	}
	m := traceUntil(t, c.ProxyClient(t, dcA), &proxypb.TraceMessageRequest{Topic: "tr-u", Id: sent.Id}, "mirrored", func(m *proxypb.MessageTrace) bool {
		return len(recordsIn(m, other)) > 0
	})
	orig := m.GetRecords()[0]
	if orig.GetDc() != sent.Dc || orig.GetStoredIn() != "tr-u" || orig.GetReplicated() || m.GetTopic() != "tr-u" {
		t.Fatalf("original %v (sent %v)", orig, sent)
	}
	for _, mirror := range recordsIn(m, other) {
		if mirror.GetStoredIn() != names.MirrorTopic(sent.Dc, "tr-u") || !mirror.GetReplicated() ||
			mirror.GetQueueId() != orig.GetQueueId() || mirror.GetOffset() != orig.GetOffset() {
			t.Fatalf("mirror copy %v of %v", mirror, orig)
		}
	}
}

func recordsIn(m *proxypb.MessageTrace, dc string) []*proxypb.TracedRecord {
	var out []*proxypb.TracedRecord
	for _, r := range m.GetRecords() {
		if r.GetDc() == dc {
			out = append(out, r)
		}
	}
	return out
}

// nackOne receives one message for group (its attempt-th delivery) and
// hands it back at once.
func nackOne(t *testing.T, px proxypb.ProxyClient, group, topic string, attempt int32) {
	t.Helper()
	var got []*proxypb.ReceivedMessage
	testcluster.Eventually(t, func() bool {
		got = receive(t, px, group, topic, 1, 500*time.Millisecond, 30*time.Second)
		return len(got) == 1
	}, "delivery %d to %s", attempt, group)
	if got[0].GetAttempt() != attempt {
		t.Fatalf("delivery to %s: attempt %d, want %d", group, got[0].GetAttempt(), attempt)
	}
	_, err := px.ChangeInvisibleDuration(testCtx(t), &proxypb.ChangeInvisibleDurationRequest{
		Group: group, Topic: topic, ReceiptHandle: got[0].GetReceiptHandle(), InvisibleMillis: 0,
	})
	if err != nil {
		t.Fatalf("nack: %v", err)
	}
}
