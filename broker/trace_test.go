package broker

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/offsets"
)

func mustTrace(t *testing.T, b *Broker, req TraceRequest) []TracedCopy {
	t.Helper()
	out, err := b.Trace(req)
	if err != nil {
		t.Fatalf("Trace(%+v): %v", req, err)
	}
	return out
}

func progressOf(c TracedCopy, group string) (GroupProgress, bool) {
	for _, g := range c.Groups {
		if g.Group == group {
			return g, true
		}
	}
	return GroupProgress{}, false
}

// waitTrace polls a trace until cond holds (reviving and dispatching run
// in the background).
func waitTrace(t *testing.T, b *Broker, req TraceRequest, what string, cond func([]TracedCopy) bool) []TracedCopy {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := mustTrace(t, b, req)
		if cond(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %+v: %s: not within 5s; last: %+v", req, what, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func nack(t *testing.T, b *Broker, group string, p PoppedMessage) {
	t.Helper()
	if _, err := b.ChangeInvisibleDuration(group, p.Message.Topic, p.ReceiptHandle, 0); err != nil {
		t.Fatalf("nack %s@%d: %v", p.Message.Topic, p.Message.QueueOffset, err)
	}
}

// TestTraceConsumedRetriedDeadLettered: one message consumed by one group,
// dead-lettered by another after a retry, in flight in a third.
func TestTraceConsumedRetriedDeadLettered(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 2) // offsets 0, 1: keys k0, k1
	res, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{ID: "m-1", Keys: []string{"order-7"}, Body: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	off := res[0].QueueOffset
	pop := func(group, topic string, attempts int) PoppedMessage {
		req := PopRequest{Group: group, Topic: topic, QueueID: 0, InitialPosition: InitialEarliest, Invisible: time.Minute, MaxAttempts: attempts}
		for _, p := range popN(t, b, req, int(off)+1) {
			if p.Message.QueueOffset == off {
				return p
			}
			mustAck(t, b, group, p)
		}
		t.Fatal("message not popped")
		return PoppedMessage{}
	}
	mustAck(t, b, "ok", pop("ok", "t1", 0))
	pop("busy", "t1", 0) // left in flight
	nack(t, b, "dead", pop("dead", "t1", 2))
	retry := popN(t, b, PopRequest{Group: "dead", Topic: "%RETRY%dead", QueueID: 0, Invisible: time.Minute, MaxAttempts: 2}, 1)[0]
	if retry.Message.ID != "m-1:2" {
		t.Fatalf("retry copy %q", retry.Message.ID)
	}
	nack(t, b, "dead", retry)

	out := waitTrace(t, b, TraceRequest{ID: "m-1"}, "dead letter", func(cs []TracedCopy) bool {
		return len(cs) == 3 && cs[2].Message.Topic == "%DLQ%dead"
	})
	orig := out[0]
	if orig.Message.Topic != "t1" || orig.Message.QueueOffset != off || !orig.ReplicatedAt.IsZero() {
		t.Fatalf("original record %+v", orig)
	}
	ok, _ := progressOf(orig, "ok")
	if !ok.Consumed || ok.Committed != off+1 || ok.Passed.By.IsZero() || ok.Passed.By.Before(ok.Passed.After) || ok.Passed.Synced {
		t.Fatalf("acked group: %+v", ok)
	}
	busy, _ := progressOf(orig, "busy")
	if busy.Consumed || !busy.InFlight || busy.Attempt != 1 || busy.Committed != off {
		t.Fatalf("group with the message in flight: %+v", busy)
	}
	if dead, _ := progressOf(orig, "dead"); !dead.Consumed {
		t.Fatalf("group that moved it to its retry topic: %+v", dead)
	}
	if r := out[1]; r.Message.Topic != "%RETRY%dead" || r.Message.ID != "m-1:2" || len(r.Groups) != 1 || !r.Groups[0].Consumed {
		t.Fatalf("retry copy %+v", r)
	}
	if d := out[2]; d.Message.ID != "m-1:3" || d.Message.Properties[PropReconsumeTimes] != "2" || len(d.Groups) != 1 || d.Groups[0].Consumed {
		t.Fatalf("dead letter %+v", d)
	}

	byKey := mustTrace(t, b, TraceRequest{Topic: "t1", Key: "order-7"})
	if len(byKey) != 3 || byKey[0].Message.ID != "m-1" {
		t.Fatalf("by key: %+v", byKey)
	}
	if got := mustTrace(t, b, TraceRequest{Topic: "other", ID: "m-1"}); len(got) != 0 {
		t.Fatalf("trace in another topic found %+v", got)
	}
}

func TestTraceByKeyNewestFirstBounded(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 2)
	for i := range 5 {
		_, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: int32(i % 2), Messages: []Message{{ID: "k-" + strconv.Itoa(i), Keys: []string{"same"}, Body: []byte("x")}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The index is written behind the commitlog: wait until all five are
	// indexed, else the newest three could be asked for before k-4 is.
	waitTrace(t, b, TraceRequest{Topic: "t1", Key: "same", Max: 10}, "all five indexed", func(cs []TracedCopy) bool { return len(cs) == 5 })
	out := mustTrace(t, b, TraceRequest{Topic: "t1", Key: "same", Max: 3})
	if len(out) != 3 {
		t.Fatalf("Max 3 returned %d copies", len(out))
	}
	for i, want := range []string{"k-4", "k-3", "k-2"} {
		if out[i].Message.ID != want {
			t.Fatalf("message %d is %s, want %s (newest first)", i, out[i].Message.ID, want)
		}
	}
}

func TestTraceDelayedMessage(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	at := time.Now().Add(300 * time.Millisecond)
	_, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{
		ID: "later", Body: []byte("x"), Properties: map[string]string{PropDeliverAt: strconv.FormatInt(at.UnixNano(), 10)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	out := waitTrace(t, b, TraceRequest{Topic: "t1", ID: "later"}, "scheduled", func(cs []TracedCopy) bool { return len(cs) > 0 })
	if len(out) != 1 || out[0].Message.Topic != ScheduleTopic || out[0].Message.Properties[PropRealTopic] != "t1" || time.Now().After(at) {
		t.Fatalf("delayed message before it is due: %+v", out)
	}
	waitTrace(t, b, TraceRequest{ID: "later"}, "delivered", func(cs []TracedCopy) bool {
		return len(cs) == 1 && cs[0].Message.Topic == "t1"
	})
}

// TestTraceReplicatedCopy: a follower's record says when it was stored
// there, and a consumer offset raised from the other DC reads as synced.
func TestTraceReplicatedCopy(t *testing.T) {
	a := dcBroker(t, "idc-a", t.TempDir(), nil)
	f := dcBroker(t, "idc-b", t.TempDir(), nil)
	setOrder(t, a, 1, "idc-a", "async", "idc-b")
	setOrder(t, f, 1, "idc-a", "async", "idc-b")
	if _, err := sendOrd(a, 1, "m0", "m1"); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	catchUp(t, a, f)
	if _, err := f.SyncConsumerOffsets([]offsets.Entry{{Group: "g", Topic: "ord", Queue: 0, Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	lead := waitTrace(t, a, TraceRequest{ID: "id-m0"}, "indexed", func(cs []TracedCopy) bool { return len(cs) == 1 })
	if lead[0].Message.Flags&commitlog.FlagReplicated != 0 || !lead[0].ReplicatedAt.IsZero() {
		t.Fatalf("leader's record: %+v", lead[0])
	}
	out := waitTrace(t, f, TraceRequest{Topic: "ord", ID: "id-m0"}, "indexed", func(cs []TracedCopy) bool { return len(cs) == 1 })
	c := out[0]
	if c.Message.Flags&commitlog.FlagReplicated == 0 || c.ReplicatedAt.Before(before) || c.Message.StoreTime != lead[0].Message.StoreTime {
		t.Fatalf("follower's record: %+v (replicated at %v, leader stored at %d)", c.Message, c.ReplicatedAt, lead[0].Message.StoreTime)
	}
	g, _ := progressOf(c, "g")
	if !g.Consumed || !g.Passed.Synced {
		t.Fatalf("synced offset: %+v", g)
	}
	m1 := mustTrace(t, f, TraceRequest{ID: "id-m1"})
	if g, _ := progressOf(m1[0], "g"); g.Consumed || g.Committed != 1 {
		t.Fatalf("message after the synced offset: %+v", g)
	}
}

func TestTraceRefusals(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	tests := []struct {
		name string
		req  TraceRequest
		want error
	}{
		{"neither", TraceRequest{Topic: "t1"}, ErrInvalidArgument},
		{"both", TraceRequest{Topic: "t1", ID: "a", Key: "b"}, ErrInvalidArgument},
		{"key without topic", TraceRequest{Key: "b"}, ErrInvalidArgument},
		{"system topic", TraceRequest{Topic: "%DLQ%g", ID: "a"}, ErrInvalidName},
		{"bad topic", TraceRequest{Topic: "a b", ID: "a"}, ErrInvalidName},
		{"max", TraceRequest{Topic: "t1", Key: "b", Max: MaxTraceMessages + 1}, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.Trace(tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("Trace(%+v) = %v, want %v", tt.req, err, tt.want)
			}
		})
	}
	if out, err := b.Trace(TraceRequest{ID: "nothing"}); err != nil || len(out) != 0 {
		t.Fatalf("unknown id: %+v %v", out, err)
	}
}
