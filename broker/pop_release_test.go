package broker

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A named pop whose answer was lost is released: its messages not settled
// since are redelivered at once (through the group's retry topic, as
// ChangeInvisibleDuration 0 does, not after their minute of
// invisibility), a settled one keeps its state, and releasing again, or an
// unknown id, releases nothing.
func TestReleasePop(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	for i := range 3 {
		if _, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{ID: "m" + strconv.Itoa(i), Body: []byte("x")}}}); err != nil {
			t.Fatal(err)
		}
	}
	waitDispatched(t, b)
	pop := func(id string) []PoppedMessage {
		t.Helper()
		out, err := b.Pop(context.Background(), PopRequest{Group: "g", Topic: "t1", QueueID: -1, MaxMessages: 3, Invisible: time.Minute,
			InitialPosition: InitialEarliest, Wait: 200 * time.Millisecond, PopID: id})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := pop("lost")
	if len(first) != 3 {
		t.Fatalf("popped %d, want 3", len(first))
	}
	if err := b.Ack("g", "t1", first[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if got := pop("other"); len(got) != 0 {
		t.Fatalf("messages visible before the release: %d", len(got))
	}
	n, err := b.ReleasePop("lost")
	if err != nil || n != 2 {
		t.Fatalf("released %d (%v), want the 2 unsettled", n, err)
	}
	var again []string
	deadline := time.Now().Add(5 * time.Second)
	for len(again) < 2 && time.Now().Before(deadline) {
		out, err := b.Pop(context.Background(), PopRequest{Group: "g", Topic: "%RETRY%g", QueueID: -1, MaxMessages: 3, Wait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out {
			again = append(again, m.Message.Properties[PropOriginID])
		}
	}
	slices.Sort(again)
	if len(again) != 2 || again[0] != "m1" || again[1] != "m2" {
		t.Fatalf("after the release redelivered %v, want m1 and m2", again)
	}
	if n, err := b.ReleasePop("lost"); n != 0 || err != nil {
		t.Fatalf("second release: %d, %v", n, err)
	}
	if n, err := b.ReleasePop("never"); n != 0 || err != nil {
		t.Fatalf("unknown id: %d, %v", n, err)
	}
	if _, err := b.ReleasePop(""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty id: %v", err)
	}
}

// The broker remembers a bounded number of named pops, oldest forgotten
// first.
func TestRecentPopsBounded(t *testing.T) {
	r := newRecentPops()
	for i := range maxRecentPops + 1 {
		r.add(strconv.Itoa(i), "g", []PoppedMessage{{ReceiptHandle: "h"}})
	}
	if _, ok := r.take("0"); ok {
		t.Fatal("the oldest pop is still remembered past the bound")
	}
	if p, ok := r.take(strconv.Itoa(maxRecentPops)); !ok || len(p.receipts) != 1 {
		t.Fatalf("the newest pop: %+v %v", p, ok)
	}
}
