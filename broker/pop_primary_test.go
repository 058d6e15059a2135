package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/duomq/duomq/broker/offsets"
	"github.com/duomq/duomq/internal/names"
)

// TestConsumptionFollowsTheOrderedPrimary: pops of an ordered topic are
// refused where the DC does not lead it, and offsets consumed in the other
// DC while it led are not held back by pop state left from before, so the
// topic's return does not hand out again what was consumed meanwhile.
func TestConsumptionFollowsTheOrderedPrimary(t *testing.T) {
	a := dcBroker(t, "idc-a", t.TempDir(), nil)
	setOrder(t, a, 1, "idc-a", "async")
	if _, err := sendOrd(a, 1, "m0", "m1", "m2", "m3", "m4", "m5"); err != nil {
		t.Fatal(err)
	}
	pop := func() ([]PoppedMessage, error) {
		return a.Pop(context.Background(), PopRequest{Group: "g", Topic: "ord", QueueID: 0, Ordered: true, MaxMessages: 1, InitialPosition: InitialEarliest, Wait: time.Second})
	}
	got, err := pop() // idc-a consumes m0 and leaves it in flight
	if err != nil || len(got) != 1 {
		t.Fatalf("pop while leading: %v, %v", got, err)
	}

	setOrder(t, a, 2, "idc-b", "async", "idc-a") // the topic moves to idc-b
	if _, err := pop(); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("pop of a follower copy: %v, want ErrNotLeader", err)
	}
	// idc-b consumed m0..m3; its offset reaches idc-a.
	n, err := a.SyncConsumerOffsets([]offsets.Entry{{Group: "g", Topic: "ord", Queue: 0, Offset: 4}})
	if err != nil || n != 1 {
		t.Fatalf("offset sync to the follower: applied %d, %v", n, err)
	}

	setOrder(t, a, 3, "idc-a", "async") // and back
	got, err = pop()
	if err != nil || len(got) != 1 || string(got[0].Message.Body) != "m4" {
		t.Fatalf("first pop after the return: %+v, %v; want m4", got, err)
	}
}

// TestMirrorsAreReadWhereTheyAreCopied: a mirror of another DC's topic is
// led by that DC, yet read here while it is down; its pop state is the
// local consumers' and offset sync leaves it alone.
func TestMirrorsAreReadWhereTheyAreCopied(t *testing.T) {
	b := dcBroker(t, "idc-b", t.TempDir(), nil)
	mirror := names.MirrorTopic("idc-a", "clicks")
	mustCreate(t, b, mirror, 1)
	sendN(t, b, mirror, 0, 3) // (the replicator's copies, in the test written before the fence)
	if err := b.SetTopicOrder(mirror, 1, Order{Primary: "idc-a"}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Pop(context.Background(), PopRequest{Group: "g", Topic: mirror, QueueID: 0, MaxMessages: 1, InitialPosition: InitialEarliest, Wait: time.Second})
	if err != nil || len(got) != 1 {
		t.Fatalf("pop of a mirror: %v, %v", got, err)
	}
	n, err := b.SyncConsumerOffsets([]offsets.Entry{{Group: "g", Topic: mirror, Queue: 0, Offset: 3}})
	if err != nil || n != 0 {
		t.Fatalf("offset sync over a mirror consumed here: applied %d, %v; want 0", n, err)
	}
}
