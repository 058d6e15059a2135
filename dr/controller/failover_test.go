package controller_test

import (
	"errors"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

func TestFailover(t *testing.T) {
	newEnv := sharedEnv(t)
	t.Run("automatic when a dc loses its brokers", func(t *testing.T) { autoFailoverWhenDCLosesItsBrokers(t, newEnv(t)) })
	t.Run("automatic failback returns topics home", func(t *testing.T) { autoFailbackReturnsTopicsHome(t, newEnv(t)) })
	t.Run("resumed by the next leader", func(t *testing.T) { failoverResumedByNextLeader(t, newEnv(t)) })
	t.Run("forced waits out the lease when fencing fails", func(t *testing.T) { forcedFailoverWaitsOutTheLeaseWhenFencingFails(t, newEnv(t)) })
	t.Run("forced does not wait when every broker is fenced", func(t *testing.T) { forcedFailoverOfFencedDCDoesNotWaitForTheLease(t, newEnv(t)) })
	t.Run("automatic waits the startup grace for a dc never seen", func(t *testing.T) { autoFailoverWaitsStartupGraceForADCNeverSeen(t, newEnv(t)) })
}

func autoFailoverWhenDCLosesItsBrokers(t *testing.T, e *env) {
	c := e.start(testConfig("c1"), noHooks)
	e.leader(c)
	if o := e.ordered(); o.Primary != dcA || o.Epoch != 1 {
		t.Fatalf("failed over while idc-a was alive: %+v", o)
	}

	killed := time.Now()
	e.kill(dcA)
	etcdtest.Eventually(t, wait, func() bool { return e.ordered().Primary == dcB }, "orders did not fail over to idc-b")
	if o := e.ordered(); o != (meta.Ordered{Topic: topic, Primary: dcB, Epoch: 2}) {
		t.Fatalf("record after failover %+v, want primary idc-b at epoch 2, unblocked", o)
	}
	etcdtest.Eventually(t, wait, func() bool { return e.dcState(dcA) == meta.DCDown }, "idc-a not marked down")
	if got := e.dcState(dcB); got != meta.DCActive {
		t.Fatalf("idc-b is %s", got)
	}
	if f := e.brokers.Fences(); len(f) != 0 {
		t.Fatalf("a failover of a DC without brokers fenced %v", f)
	}
	etcdtest.Eventually(t, wait, func() bool { _, ok := e.lastAudit("failover"); return ok && len(e.state()) == 0 },
		"no failover audit record, or the transition stayed in controller/state")
	rec, _ := e.lastAudit("failover")
	if rec.Outcome != controller.OutcomeOK || rec.Topic != topic || rec.From != dcA || rec.To != dcB || rec.Actor != "controller" || rec.Controller != "c1" {
		t.Fatalf("audit record %+v", rec)
	}
	if rec.Time.Before(killed) || rec.DurationSeconds <= 0 || rec.PauseSeconds != 0 {
		t.Fatalf("audit record time %v (killed %v), duration %v, pause %v", rec.Time, killed, rec.DurationSeconds, rec.PauseSeconds)
	}
	if b, a := decodeOrdered(t, rec.Before), decodeOrdered(t, rec.After); b.Epoch != 1 || a.Epoch != 2 || a.Primary != dcB {
		t.Fatalf("audit before %+v after %+v", b, a)
	}
	if got := c.counter("duomq_controller_failovers_total", "outcome", "ok"); got != 1 {
		t.Fatalf("failovers_total{ok} = %v", got)
	}
	if got := c.counter("duomq_controller_dc_state", "dc_name", dcA); got != 2 {
		t.Fatalf("dc_state{idc-a} = %v, want 2 (down)", got)
	}
}

func autoFailbackReturnsTopicsHome(t *testing.T, e *env) {
	cfg := testConfig("c1")
	cfg.AutoFailback = true
	c := e.start(cfg, noHooks)
	e.leader(c)
	e.kill(dcA)
	etcdtest.Eventually(t, wait, func() bool { return e.ordered().Primary == dcB && e.dcState(dcA) == meta.DCDown }, "no failover")

	// idc-b took writes while idc-a was away; idc-a's followers have them.
	e.setQueues(dcB, 15, 25, 35, 45)
	e.setQueues(dcA, 15, 25, 35, 45)
	e.alive(dcA, "b0", "b1")
	etcdtest.Eventually(t, wait, func() bool { o := e.ordered(); return o.Primary == dcA && !o.Blocked }, "orders did not fail back to idc-a")
	if o := e.ordered(); o.Epoch != 4 {
		t.Fatalf("record after failback %+v, want epoch 4 (failover 2, block 3, promote 4)", o)
	}
	if got := e.dcState(dcA); got != meta.DCActive {
		t.Fatalf("idc-a is %s after failback", got)
	}
	for _, f := range e.brokers.Fences() {
		if f.Epoch != 3 || (f.Addr != addr(dcB, "b0") && f.Addr != addr(dcB, "b1")) {
			t.Fatalf("fence %+v: want idc-b's brokers at epoch 3", f)
		}
	}
	etcdtest.Eventually(t, wait, func() bool { r, ok := e.lastAudit("failback"); return ok && r.Outcome == controller.OutcomeOK }, "no failback audit record")
}

// TestFailoverResumedByNextLeader stops the leader right after it blocked
// the topic in a forced failover (fault point), and checks that the next
// leader finishes it from controller/state.
func failoverResumedByNextLeader(t *testing.T, e *env) {
	halted := make(chan controller.Transition, 1)
	hooks := controller.Hooks{AfterPhase: func(tr controller.Transition, p controller.Phase) error {
		if tr.Kind == controller.KindFailover && p == controller.PhaseBlock {
			halted <- tr
			return errors.New("leader crashes")
		}
		return nil
	}}
	c1 := e.start(testConfig("c1"), hooks)
	e.leader(c1)
	c2 := e.start(testConfig("c2"), noHooks)

	_, err := c1.Failover(e.ctx(), controller.FailoverRequest{Topic: topic, To: dcB, Force: true, Actor: "test"})
	if !errors.Is(err, controller.ErrInterrupted) {
		t.Fatalf("failover through the fault point: %v, want ErrInterrupted", err)
	}
	tr := <-halted
	if o := e.ordered(); o != (meta.Ordered{Topic: topic, Primary: dcA, Epoch: 2, Blocked: true}) {
		t.Fatalf("record at the fault point %+v, want idc-a blocked at epoch 2", o)
	}
	st := e.state()
	if len(st) != 1 || st[0].ID != tr.ID || st[0].Phase != controller.PhaseBlock || st[0].Leader != "c1" || st[0].BlockEpoch != 2 {
		t.Fatalf("controller/state %+v, want the failover in phase block", st)
	}
	if len(e.brokers.Fences()) != 0 {
		t.Fatal("fenced before the fault point's phase")
	}
	if c2.IsLeader() {
		t.Fatal("c2 leads while c1 does")
	}

	c1.Close()
	e.leader(c2)
	etcdtest.Eventually(t, wait, func() bool { return e.ordered().Primary == dcB }, "c2 did not finish the failover")
	if o := e.ordered(); o != (meta.Ordered{Topic: topic, Primary: dcB, Epoch: 3}) {
		t.Fatalf("record after the resumed failover %+v, want idc-b at epoch 3", o)
	}
	fenced := map[string]uint64{}
	for _, f := range e.brokers.Fences() {
		fenced[f.Addr] = f.Epoch
	}
	if fenced[addr(dcA, "b0")] != 2 || fenced[addr(dcA, "b1")] != 2 || len(fenced) != 2 {
		t.Fatalf("fences %v: want both idc-a brokers at epoch 2", fenced)
	}
	etcdtest.Eventually(t, wait, func() bool { return len(e.state()) == 0 }, "the transition stayed in controller/state")
	rec, ok := e.lastAudit("failover")
	if !ok || rec.ID != tr.ID || rec.Controller != "c2" || rec.Outcome != controller.OutcomeOK || rec.Actor != "test" {
		t.Fatalf("audit %+v ok=%v: want the failover %s finished by c2", rec, ok, tr.ID)
	}
	if b := decodeOrdered(t, rec.Before); b.Epoch != 1 || b.Primary != dcA || b.Blocked {
		t.Fatalf("audit before %+v", b)
	}
	if got := e.dcState(dcA); got != meta.DCActive {
		t.Fatalf("a failover of one topic set idc-a %s", got)
	}
}

func forcedFailoverWaitsOutTheLeaseWhenFencingFails(t *testing.T, e *env) {
	c := e.start(testConfig("c1"), noHooks)
	e.leader(c)
	e.brokers.FailFence(addr(dcA, "b1"), errors.New("unreachable"))
	rep, err := c.Failover(e.ctx(), controller.FailoverRequest{Topic: topic, To: dcB, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Transitions[0]
	if o.Outcome != controller.OutcomeOK || o.After != (meta.Ordered{Topic: topic, Primary: dcB, Epoch: 3}) {
		t.Fatalf("outcome %+v", o)
	}
	if lease := testConfig("").LeaseTTL.Seconds(); o.PauseSeconds < lease {
		t.Fatalf("writes resumed %.3fs after the block, before the lease TTL %.3fs", o.PauseSeconds, lease)
	}
}

func forcedFailoverOfFencedDCDoesNotWaitForTheLease(t *testing.T, e *env) {
	cfg := testConfig("c1")
	cfg.LeaseTTL = time.Hour
	c := e.start(cfg, noHooks)
	e.leader(c)
	rep, err := c.Failover(e.ctx(), controller.FailoverRequest{Topic: topic, To: dcB, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if o := rep.Transitions[0]; o.After.Primary != dcB || o.PauseSeconds >= time.Hour.Seconds() {
		t.Fatalf("outcome %+v", o)
	}
}

// TestAutoFailoverWaitsStartupGraceForADCNeverSeen: a DC without brokers
// when the controller starts is failed over only after startup-grace.
func autoFailoverWaitsStartupGraceForADCNeverSeen(t *testing.T, e *env) {
	e.must(e.store.CreateTopic(e.ctx(), meta.Topic{Name: "payments", Ordered: true, Queues: 2, Primary: dcB}))
	e.kill(dcB)
	cfg := testConfig("c1")
	cfg.StartupGrace = time.Second
	started := time.Now()
	c := e.start(cfg, noHooks)
	e.leader(c)
	etcdtest.Eventually(t, wait, func() bool { return e.dcState(dcB) == meta.DCDown }, "idc-b was not failed over")
	// The DC's state is set before the transition's audit record is
	// written: wait for the record.
	var rec controller.AuditRecord
	etcdtest.Eventually(t, wait, func() bool {
		var ok bool
		rec, ok = e.lastAudit("failover")
		return ok
	}, "no failover audit record")
	if rec.Topic != "payments" || rec.To != dcA {
		t.Fatalf("audit %+v", rec)
	}
	if d := rec.Time.Sub(started); d < cfg.StartupGrace {
		t.Fatalf("failed over %v after the start, within the startup grace %v", d, cfg.StartupGrace)
	}
}
