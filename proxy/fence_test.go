package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/meta"
)

// fenceMeta is a Metadata whose ordered records the test sets.
type fenceMeta struct {
	Metadata
	ord map[string]meta.Ordered
}

func (m *fenceMeta) Ordered(topic string) (meta.Ordered, int64, bool) {
	o, ok := m.ord[topic]
	return o, 0, ok
}

func TestFencesEndSendsToAReplacedPrimary(t *testing.T) {
	a := meta.Ordered{Topic: "orders", Primary: "idc-a", Epoch: 1}
	m := &fenceMeta{ord: map[string]meta.Ordered{"orders": a}}
	f := newFences(m)
	defer f.close()

	ctx, replaced, done := f.guard(context.Background(), a)
	defer done()
	// Blocked for a planned switchover: sends in flight finish.
	m.ord["orders"] = meta.Ordered{Topic: "orders", Primary: "idc-a", Epoch: 1, Blocked: true}
	f.changed()
	if ctx.Err() != nil || replaced() {
		t.Fatal("a blocked record ended a send in flight")
	}
	// A new primary at a newer epoch: the send to idc-a ends.
	m.ord["orders"] = meta.Ordered{Topic: "orders", Primary: "idc-b", Epoch: 2}
	f.changed()
	if !replaced() {
		t.Fatal("the send to the replaced primary goes on")
	}
	select { // the send's context ends (context.AfterFunc runs apart)
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the send's context did not end")
	}

	// A send that read the old record is not guarded (the broker refuses
	// its epoch); one with the new record is, and outlives a repeat.
	b := m.ord["orders"]
	ctx2, replaced2, done2 := f.guard(context.Background(), b)
	defer done2()
	old, _, doneOld := f.guard(context.Background(), a)
	doneOld()
	if old.Err() != nil || ctx2.Err() != nil || replaced2() {
		t.Fatal("a stale send disturbed the current generation")
	}
	f.changed()
	if ctx2.Err() != nil {
		t.Fatal("an unchanged record ended a send")
	}
}
