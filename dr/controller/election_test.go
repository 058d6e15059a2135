package controller_test

import (
	"errors"
	"maps"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"

	"github.com/duomq/duomq/internal/etcdtest"
)

// leaders returns the candidates that lead.
func leaders(cs ...cand) []cand {
	var out []cand
	for _, c := range cs {
		if c.IsLeader() {
			out = append(out, c)
		}
	}
	return out
}

func TestControllerElection(t *testing.T) {
	newEnv := sharedEnv(t)
	t.Run("one leader then takeover", func(t *testing.T) { oneLeaderThenTakeover(t, newEnv(t)) })
	t.Run("a deposed leader writes nothing", func(t *testing.T) { deposedLeaderWritesNothing(t, newEnv(t)) })
}

func oneLeaderThenTakeover(t *testing.T, e *env) {
	cs := []cand{e.start(testConfig("c1"), noHooks), e.start(testConfig("c2"), noHooks), e.start(testConfig("c3"), noHooks)}
	etcdtest.Eventually(t, wait, func() bool { return len(leaders(cs...)) == 1 }, "no single leader among three candidates")
	first := leaders(cs...)[0]
	for _, c := range cs {
		li, ok, err := c.Leader(e.ctx())
		if err != nil || !ok || li.ID != first.ID() || li.APIURL != "http://"+first.ID()+".invalid:1" {
			t.Fatalf("%s sees leader %+v ok=%v err=%v, want %s", c.ID(), li, ok, err, first.ID())
		}
		want := 0.0
		if c.ID() == first.ID() {
			want = 1
		}
		if got := c.counter("duomq_controller_leader"); got != want {
			t.Errorf("%s: leader gauge %v, want %v", c.ID(), got, want)
		}
	}

	first.Close()
	var rest []cand
	for _, c := range cs {
		if c.ID() != first.ID() {
			rest = append(rest, c)
		}
	}
	etcdtest.Eventually(t, wait, func() bool { return len(leaders(rest...)) == 1 }, "no candidate took over from %s", first.ID())
	if first.IsLeader() {
		t.Fatalf("closed candidate %s still leads", first.ID())
	}
	next := leaders(rest...)[0]
	li, ok, err := next.Leader(e.ctx())
	if err != nil || !ok || li.ID != next.ID() {
		t.Fatalf("leader key %+v ok=%v err=%v, want %s", li, ok, err, next.ID())
	}
	first.Close() // twice is safe
}

// deposedLeaderWritesNothing deletes the leader's election key behind its
// back (as a lost session would): its next write must not happen, and it
// stands for election again.
func deposedLeaderWritesNothing(t *testing.T, e *env) {
	c := e.start(testConfig("c1"), noHooks)
	e.leader(c)
	if _, err := e.cli.Delete(e.ctx(), e.store.Key(meta.KeyControllerLeader)+"/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	before := e.revisions()
	_, err := c.Switchover(e.ctx(), controller.SwitchoverRequest{Topic: topic, To: dcB})
	if !errors.Is(err, controller.ErrNotLeader) {
		t.Fatalf("switchover by a deposed leader: %v, want ErrNotLeader", err)
	}
	if after := e.revisions(); !maps.Equal(before, after) {
		t.Fatalf("a deposed leader wrote:\nbefore %v\nafter  %v", before, after)
	}
	etcdtest.Eventually(t, wait, func() bool {
		li, ok, err := c.Leader(e.ctx())
		return err == nil && ok && li.ID == "c1" && c.IsLeader()
	}, "c1 did not stand for election again")
	e.setQueues(dcA, 1, 2, 3, 4)
	e.setQueues(dcB, 1, 2, 3, 4)
	if _, err := c.Switchover(e.ctx(), controller.SwitchoverRequest{Topic: topic, To: dcB}); err != nil {
		t.Fatalf("switchover after the new election: %v", err)
	}
}

// TestLeadershipMovesToThePreferredCandidate: the first elected hands over
// to the preferred candidate (the witness's, in a deployment) once it
// campaigns, and the preferred one keeps it.
func TestLeadershipMovesToThePreferredCandidate(t *testing.T) {
	e := newEnv(t)
	cfg := func(id string) controller.Config {
		c := testConfig(id)
		c.PreferredLeader = "c3"
		return c
	}
	c1 := e.start(cfg("c1"), noHooks)
	e.leader(c1)
	c2 := e.start(cfg("c2"), noHooks)
	c3 := e.start(cfg("c3"), noHooks)
	e.leader(c3)
	if c1.IsLeader() || c2.IsLeader() {
		t.Fatal("two leaders")
	}
}
