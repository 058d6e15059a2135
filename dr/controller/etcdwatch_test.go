package controller

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/duomq/duomq/internal/etcdtest"
)

func TestMostNamed(t *testing.T) {
	for _, tc := range []struct {
		votes map[uint64]int
		want  uint64
	}{
		{nil, 0},
		{map[uint64]int{7: 1}, 7},
		{map[uint64]int{7: 1, 9: 2}, 9},
		{map[uint64]int{9: 1, 7: 1}, 7},
	} {
		if got := mostNamed(tc.votes); got != tc.want {
			t.Errorf("mostNamed(%v) = %d, want %d", tc.votes, got, tc.want)
		}
	}
}

// TestEtcdMonitor probes a real 3-member cluster: every member up with a
// leader; a leadership move is counted once; a killed member is seen
// down while the other two keep a leader.
func TestEtcdMonitor(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	cli := c.Client(t)
	m := newEtcdMetrics(prometheus.NewRegistry())
	e := &etcdMonitor{cli: cli, clock: realClock{}, interval: time.Second, m: m, members: map[string]bool{}}
	ctx := context.Background()
	probe := func() { e.probe(ctx) }
	up := func(name string) float64 { return testutil.ToFloat64(m.up.WithLabelValues(name)) }

	probe()
	names := []string{c.Config(0).Name, c.Config(1).Name, c.Config(2).Name}
	for _, n := range names {
		if up(n) != 1 {
			t.Fatalf("member %s up = %v, want 1", n, up(n))
		}
		if db := testutil.ToFloat64(m.dbSize.WithLabelValues(n)); db <= 0 {
			t.Fatalf("member %s db size = %v, want > 0", n, db)
		}
	}
	if testutil.ToFloat64(m.hasLeader) != 1 || testutil.ToFloat64(m.leaderChanges) != 0 {
		t.Fatalf("has_leader %v, leader changes %v; want 1 and 0", testutil.ToFloat64(m.hasLeader), testutil.ToFloat64(m.leaderChanges))
	}

	// Move the leadership to another member: one change.
	from := c.Leader(t, 10*time.Second)
	to := (from + 1) % 3
	st, err := cli.Status(ctx, c.Member(to).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	lcli := c.Client(t)
	lcli.SetEndpoints(c.Member(from).ClientURL())
	if _, err := lcli.MoveLeader(ctx, st.Header.MemberId); err != nil {
		t.Fatalf("move leader: %v", err)
	}
	etcdtest.Eventually(t, 10*time.Second, func() bool { probe(); return testutil.ToFloat64(m.leaderChanges) == 1 }, "leader change counted")

	// Kill a member that does not lead: it is seen down, a leader remains.
	victim := (c.Leader(t, 10*time.Second) + 1) % 3
	c.Kill(victim)
	etcdtest.Eventually(t, 10*time.Second, func() bool { probe(); return up(names[victim]) == 0 }, "killed member seen down")
	if testutil.ToFloat64(m.hasLeader) != 1 {
		t.Fatal("no leader seen with two members of three up")
	}
	if got := testutil.ToFloat64(m.leaderChanges); got != 1 {
		t.Fatalf("leader changes %v after a follower was killed, want 1", got)
	}
}
