package controller_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
)

func TestSwitchover(t *testing.T) {
	newEnv := sharedEnv(t)
	t.Run("waits for catch-up then moves the primary", func(t *testing.T) { switchoverWaitsForCatchUpThenMovesThePrimary(t, newEnv(t)) })
	t.Run("rolls back", func(t *testing.T) { switchoverRollsBack(t, newEnv) })
	t.Run("failback catches up then switches over", func(t *testing.T) { failbackCatchesUpThenSwitchesOver(t, newEnv(t)) })
}

func switchoverWaitsForCatchUpThenMovesThePrimary(t *testing.T, e *env) {
	c := e.start(testConfig("c1"), noHooks)
	e.leader(c)
	e.setQueues(dcA, 10, 20, 30, 40)
	e.setQueues(dcB, 10, 17, 30, 31) // queues 1 and 3 lag
	// The followers catch up on the third poll of broker b1 (queues 1
	// and 3); until then every poll must see the topic blocked in idc-a.
	var mu sync.Mutex
	var seen []meta.Ordered
	e.brokers.OnReplicaState(func(a, tp string, n int) {
		if a != addr(dcB, "b1") {
			return
		}
		o, _, err := e.store.GetOrdered(e.ctx(), topic)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
		if n == 2 {
			e.setQueues(dcB, 10, 20, 30, 40)
		}
	})

	rep, err := c.Switchover(e.ctx(), controller.SwitchoverRequest{Topic: topic, To: dcB, Actor: "ops", Reason: "maintenance"})
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Transitions[0]
	if o.Outcome != controller.OutcomeOK || o.Before != (meta.Ordered{Topic: topic, Primary: dcA, Epoch: 1}) ||
		o.After != (meta.Ordered{Topic: topic, Primary: dcB, Epoch: 3}) {
		t.Fatalf("outcome %+v", o)
	}
	if o.PauseSeconds <= 0 || o.PauseSeconds > o.DurationSeconds {
		t.Fatalf("pause %v, duration %v", o.PauseSeconds, o.DurationSeconds)
	}
	if got := e.ordered(); got != o.After {
		t.Fatalf("record %+v", got)
	}
	kv, err := e.cli.Get(e.ctx(), e.store.Key("ordered/"+topic))
	if err != nil {
		t.Fatal(err)
	}
	if v := kv.Kvs[0].Version; v != 3 {
		t.Fatalf("the record was written %d times, want 3 (create, block, promote)", v)
	}
	mu.Lock()
	if len(seen) < 3 {
		t.Fatalf("promoted after %d polls of the lagging follower, want 3", len(seen))
	}
	for _, s := range seen {
		if s != (meta.Ordered{Topic: topic, Primary: dcA, Epoch: 2, Blocked: true}) {
			t.Fatalf("a catch-up poll saw %+v: want idc-a blocked at epoch 2", s)
		}
	}
	mu.Unlock()
	fenced := map[string]uint64{}
	for _, f := range e.brokers.Fences() {
		fenced[f.Addr] = f.Epoch
	}
	if len(fenced) != 2 || fenced[addr(dcA, "b0")] != 2 || fenced[addr(dcA, "b1")] != 2 {
		t.Fatalf("fences %v", fenced)
	}
	rec, ok := e.lastAudit("switchover")
	if !ok || rec.Outcome != controller.OutcomeOK || rec.PauseSeconds != o.PauseSeconds || rec.Actor != "ops" || rec.Reason != "maintenance" {
		t.Fatalf("audit %+v", rec)
	}
	if got := c.counter("duomq_controller_switchovers_total", "outcome", "ok"); got != 1 {
		t.Fatalf("switchovers_total{ok} = %v", got)
	}
	if got := c.counter("duomq_controller_last_write_pause_seconds"); got != o.PauseSeconds {
		t.Fatalf("last pause gauge %v, want %v", got, o.PauseSeconds)
	}
	if len(e.state()) != 0 {
		t.Fatalf("controller/state keeps %+v", e.state())
	}
}

func switchoverRollsBack(t *testing.T, newEnv func(*testing.T) *env) {
	for _, tt := range []struct {
		name    string
		break_  func(e *env)
		want    error
		wantMsg string
	}{
		{"catch-up timeout", func(e *env) { e.setQueues(dcB, 10, 20, 30, 39) }, controller.ErrCatchUpTimeout, "queue 3 at 39 of 40"},
		{"fence failure", func(e *env) { e.brokers.FailFence(addr(dcA, "b1"), errors.New("disk full")) }, controller.ErrFenceFailed, "disk full"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := testConfig("c1")
			cfg.CatchUpTimeout = 300 * time.Millisecond
			ctl := e.start(cfg, noHooks)
			e.leader(ctl)
			e.setQueues(dcA, 10, 20, 30, 40)
			e.setQueues(dcB, 10, 20, 30, 40)
			tt.break_(e)
			rep, err := ctl.Switchover(e.ctx(), controller.SwitchoverRequest{Topic: topic, To: dcB})
			if !errors.Is(err, tt.want) {
				t.Fatalf("switchover: %v, want %v", err, tt.want)
			}
			o := rep.Transitions[0]
			if o.Outcome != controller.OutcomeRolledBack || o.After != (meta.Ordered{Topic: topic, Primary: dcA, Epoch: 3}) {
				t.Fatalf("outcome %+v", o)
			}
			if got := e.ordered(); got != o.After {
				t.Fatalf("record %+v after rollback", got)
			}
			rec, ok := e.lastAudit("switchover")
			if !ok || rec.Outcome != controller.OutcomeRolledBack || !strings.Contains(rec.Error, tt.wantMsg) || rec.PauseSeconds <= 0 {
				t.Fatalf("audit %+v", rec)
			}
			if got := ctl.counter("duomq_controller_switchovers_total", "outcome", "rolled-back"); got != 1 {
				t.Fatalf("switchovers_total{rolled-back} = %v", got)
			}
			if len(e.state()) != 0 {
				t.Fatalf("controller/state keeps %+v", e.state())
			}
		})
	}
}

func failbackCatchesUpThenSwitchesOver(t *testing.T, e *env) {
	cfg := testConfig("c1")
	cfg.AutoFailover = false
	c := e.start(cfg, noHooks)
	e.leader(c)
	// A failover moved orders to idc-b and marked idc-a down; idc-a is
	// back, its followers behind idc-b.
	_, rev, err := e.store.GetOrdered(e.ctx(), topic)
	if err != nil {
		t.Fatal(err)
	}
	e.must(e.store.CASOrdered(e.ctx(), topic, rev, meta.Ordered{Topic: topic, Primary: dcB, Epoch: 2}))
	e.must(e.store.SetDCState(e.ctx(), dcA, meta.DCDown, "test"))
	e.setQueues(dcB, 50, 60, 70, 80)
	e.setQueues(dcA, 10, 20, 30, 40)
	e.brokers.OnReplicaState(func(a, tp string, n int) {
		if a == addr(dcA, "b0") && n == 3 {
			e.setQueues(dcA, 50, 60, 70, 80)
		}
	})
	if _, err := c.Switchover(e.ctx(), controller.SwitchoverRequest{Topic: topic, To: dcA}); !errors.Is(err, controller.ErrDCDown) {
		t.Fatalf("switchover to a down dc: %v", err)
	}
	rep, err := c.Failback(e.ctx(), controller.FailbackRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if o := rep.Transitions[0]; o.Kind != controller.KindFailback || o.After != (meta.Ordered{Topic: topic, Primary: dcA, Epoch: 4}) {
		t.Fatalf("outcome %+v", o)
	}
	if got := e.dcState(dcA); got != meta.DCActive {
		t.Fatalf("idc-a is %s", got)
	}
	if n := e.brokers.ReplicaStateCalls(addr(dcA, "b0")); n < 4 {
		t.Fatalf("idc-a's follower was asked %d times: the failback did not wait for it", n)
	}
	if _, err := c.Failback(e.ctx(), controller.FailbackRequest{Topic: topic}); !errors.Is(err, controller.ErrAlreadyPrimary) {
		t.Fatalf("second failback: %v", err)
	}
}
