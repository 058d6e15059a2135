package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// isrTimeout is the tests' isr-timeout: short, and far below the
// replica-timeout so that failing fast is told apart from timing out.
const isrTimeout = 300 * time.Millisecond

// isrLeader opens the leader of "ord" in idc-a with idc-b following it
// under replication sync and the given sync policy; reg gets its metrics.
func isrLeader(t *testing.T, policy string) (*Broker, *Broker, *prometheus.Registry) {
	t.Helper()
	return isrLeaderQueues(t, policy, 1)
}

// isrLeaderQueues is isrLeader with a topic of n queues on the leader
// (the follower has queue 0 only: it follows no other from here).
func isrLeaderQueues(t *testing.T, policy string, n uint32) (*Broker, *Broker, *prometheus.Registry) {
	t.Helper()
	cfg := testConfig(t.TempDir())
	cfg.Name, cfg.DC = "broker-idc-a", "idc-a"
	cfg.ISRTimeout, cfg.ReplicaTimeout = isrTimeout, 10*time.Second
	reg := prometheus.NewRegistry()
	a, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.Start(ctx)
	t.Cleanup(func() { cancel(); a.Close() })
	mustCreate(t, a, "ord", n)
	b := dcBroker(t, "idc-b", t.TempDir(), nil)
	for _, br := range []*Broker{a, b} {
		o := Order{Primary: "idc-a", Replication: "sync", Followers: []string{"idc-b"}, SyncPolicy: policy}
		if err := br.SetTopicOrder("ord", 1, o); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, reg
}

// replicateStep is replicateOnce for a background loop: errors are
// returned, not fatal.
func replicateStep(ctx context.Context, leader, follower *Broker) error {
	return replicateStepAs(ctx, leader, follower, follower.DC())
}

// replicateStepAs is replicateStep fetching as follower id (a standby's
// StandbyID, or a DC).
func replicateStepAs(ctx context.Context, leader, follower *Broker, id string) error {
	st, err := follower.ReplicaState(ctx, "ord")
	if err != nil {
		return err
	}
	q := st.Queues[0]
	res, err := leader.ReplicaFetch(ctx, ReplicaFetchRequest{Topic: "ord", Offset: q.NextOffset, LastEpoch: q.LastEpoch,
		Wait: 50 * time.Millisecond, FollowerDC: id})
	if err != nil || len(res.Messages) == 0 {
		return err
	}
	_, err = follower.ReplicaAppend(ctx, "ord", 0, q.NextOffset, res.Messages)
	return err
}

// follow runs the follower's replication loop until the returned stop is
// called (as the replicator does; stopping it is the follower cut off).
func follow(t *testing.T, leader, follower *Broker) (stop func()) {
	t.Helper()
	return followAs(t, leader, follower, follower.DC())
}

// followAs is follow fetching as follower id.
func followAs(t *testing.T, leader, follower *Broker, id string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := replicateStepAs(ctx, leader, follower, id); err != nil && ctx.Err() == nil {
				t.Errorf("replication step: %v", err)
				return
			}
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// waitUntil polls cond every 10 ms until it holds or 10 s passed.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gauge returns the value of a gauge series of topic "ord".
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == "ord" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{topic=\"ord\"}", name)
	return 0
}

func isrChanges(b *Broker, change string) float64 {
	return testutil.ToFloat64(b.metrics.isrChanges.WithLabelValues("ord", change))
}

// sendHeld sends bodies and checks that the follower holds them once the
// send returns: an ack implies the in-sync follower has them.
func sendHeld(t *testing.T, leader, follower *Broker, bodies ...string) {
	t.Helper()
	if _, err := sendOrd(leader, 1, bodies...); err != nil {
		t.Fatalf("send %v: %v", bodies, err)
	}
	held := strings.Join(queueBodies(t, follower), ",")
	for _, s := range bodies {
		if !strings.Contains(held, s+"@") {
			t.Fatalf("send of %s acked, but the follower holds only %s", s, held)
		}
	}
}

func TestFailPolicyFailsFastWhileFollowerOutOfSync(t *testing.T) {
	a, b, reg := isrLeader(t, "")
	stop := follow(t, a, b)
	sendHeld(t, a, b, "m0")
	if got := gauge(t, reg, "duomq_broker_sync_followers"); got != 1 {
		t.Fatalf("in-sync set size %v, want 1", got)
	}

	// The follower stops fetching: the send waiting for it fails once it
	// leaves the set, long before replica-timeout.
	stop()
	start := time.Now()
	_, err := sendOrd(a, 1, "m1")
	if took := time.Since(start); !errors.Is(err, ErrReplicaTimeout) || took >= a.cfg.ReplicaTimeout/2 {
		t.Fatalf("send with the follower cut off: %v after %v; want ErrReplicaTimeout well before %v", err, took, a.cfg.ReplicaTimeout)
	}
	if a.isr.inSync("ord", "idc-b") || isrChanges(a, "leave") != 1 {
		t.Fatalf("follower still in sync (leaves counted: %v)", isrChanges(a, "leave"))
	}
	if st, err := a.ReplicaState(context.Background(), "ord"); err != nil || !slices.Equal(st.OutOfSync, []string{"idc-b"}) {
		t.Fatalf("replica state names out of sync %v (%v), want idc-b", st.OutOfSync, err)
	}
	// Later sends fail at once, naming the DC and since when; nothing is
	// stored.
	start = time.Now()
	_, err = sendOrd(a, 1, "m2")
	if took := time.Since(start); !errors.Is(err, ErrReplicaTimeout) || took >= isrTimeout {
		t.Fatalf("send while out of sync: %v after %v; want ErrReplicaTimeout at once", err, took)
	}
	for _, s := range []string{"idc-b", "out of the in-sync set since", "nothing was stored"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if got := gauge(t, reg, "duomq_broker_sync_followers"); got != 0 {
		t.Errorf("in-sync set size %v while out, want 0", got)
	}
	if got := gauge(t, reg, "duomq_broker_sync_degraded"); got != 0 {
		t.Errorf("fail-policy topic exported as degraded: %v", got)
	}
	if n := testutil.ToFloat64(a.metrics.replicaTimeouts); n != 2 {
		t.Errorf("replica timeouts %v, want 2", n)
	}
	// Readers never see m1, which only the leader holds.
	if res, err := a.Pull(context.Background(), PullRequest{Topic: "ord", Offset: 1}); err != nil || len(res.Messages) != 0 {
		t.Fatalf("record the follower lacks is readable: %v %d", err, len(res.Messages))
	}

	// The follower resumes, catches up, re-enters; sends wait for it again.
	follow(t, a, b)
	waitUntil(t, "idc-b re-entered the in-sync set", func() bool { return a.isr.inSync("ord", "idc-b") })
	if st, err := a.ReplicaState(context.Background(), "ord"); err != nil || len(st.OutOfSync) != 0 {
		t.Fatalf("replica state names out of sync %v (%v) after the rejoin", st.OutOfSync, err)
	}
	if isrChanges(a, "rejoin") != 1 || gauge(t, reg, "duomq_broker_sync_followers") != 1 {
		t.Fatalf("rejoins %v, in-sync set size %v", isrChanges(a, "rejoin"), gauge(t, reg, "duomq_broker_sync_followers"))
	}
	sendHeld(t, a, b, "m2", "m3")
	if got := pullAll(t, a, "ord", 0, 0, 4); !slices.Equal(got, []string{"m0", "m1", "m2", "m3"}) {
		t.Fatalf("leader reads %v", got)
	}
}

func TestDegradePolicyAcksWithoutOutOfSyncFollower(t *testing.T) {
	a, b, reg := isrLeader(t, SyncPolicyDegrade)
	stop := follow(t, a, b)
	sendHeld(t, a, b, "m0")

	// Cut off: the waiting send is acked once the follower leaves, later
	// ones at once, and consumers read them (the cap follows the in-sync
	// followers: none).
	stop()
	start := time.Now()
	if _, err := sendOrd(a, 1, "m1"); err != nil || time.Since(start) >= a.cfg.ReplicaTimeout/2 {
		t.Fatalf("send with the follower cut off: %v after %v", err, time.Since(start))
	}
	if _, err := sendOrd(a, 1, "m2"); err != nil {
		t.Fatalf("send while out of sync: %v", err)
	}
	if got := pullAll(t, a, "ord", 0, 0, 3); !slices.Equal(got, []string{"m0", "m1", "m2"}) {
		t.Fatalf("leader reads %v", got)
	}
	if got := queueBodies(t, b); len(got) != 1 {
		t.Fatalf("follower holds %v: only m0 was replicated", got)
	}
	if isrChanges(a, "leave") != 1 || gauge(t, reg, "duomq_broker_sync_degraded") != 1 || gauge(t, reg, "duomq_broker_sync_followers") != 0 {
		t.Fatalf("leaves %v, degraded %v, in-sync %v", isrChanges(a, "leave"),
			gauge(t, reg, "duomq_broker_sync_degraded"), gauge(t, reg, "duomq_broker_sync_followers"))
	}
	if n := testutil.ToFloat64(a.metrics.replicaTimeouts); n != 0 {
		t.Errorf("replica timeouts %v under degrade, want 0", n)
	}

	// Back: it catches up and re-enters; acks imply it holds them again.
	follow(t, a, b)
	waitUntil(t, "idc-b re-entered the in-sync set", func() bool { return a.isr.inSync("ord", "idc-b") })
	if isrChanges(a, "rejoin") != 1 || gauge(t, reg, "duomq_broker_sync_degraded") != 0 {
		t.Fatalf("rejoins %v, degraded %v", isrChanges(a, "rejoin"), gauge(t, reg, "duomq_broker_sync_degraded"))
	}
	sendHeld(t, a, b, "m3")
	if got := strings.Join(queueBodies(t, b), ","); got != "m0@0/e1,m1@1/e1,m2@2/e1,m3@3/e1" {
		t.Fatalf("follower holds %s", got)
	}
}

// A follower DC marked down stops being a follower: it is dropped from
// the set without a change counted, and sends no longer wait for it.
func TestFollowerMarkedDownLeavesSetQuietly(t *testing.T) {
	a, _, reg := isrLeader(t, "")
	if _, err := sendOrd(a, 1, "m0"); !errors.Is(err, ErrReplicaTimeout) {
		t.Fatalf("send without follower: %v", err)
	}
	setOrder(t, a, 1, "idc-a", "sync")
	if _, err := sendOrd(a, 1, "m1"); err != nil {
		t.Fatalf("send with no follower left: %v", err)
	}
	if got := gauge(t, reg, "duomq_broker_sync_followers"); got != 0 {
		t.Fatalf("in-sync set size %v", got)
	}
	if isrChanges(a, "rejoin") != 0 {
		t.Fatal("a dropped follower counted as rejoined")
	}
}

// The set's rules as data: each step applies one follower's worst lag
// (ms: age of the first record it lacks; -1: holds every end) at a time.
func TestSyncSetRules(t *testing.T) {
	const timeout = 100 * time.Millisecond
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	type step struct {
		at        int // ms after t0
		followers []string
		lag       map[string]int // ms; absent: caught up
		want      string         // changes, e.g. "leave:idc-b rejoin:idc-c"
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"grace before leaving", []step{
			{at: 0, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 5000}, want: ""}, // stored long ago, but just tracked
			{at: 100, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 5100}, want: ""},
			{at: 101, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 5101}, want: "leave:idc-b"},
			{at: 200, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 5200}, want: ""},
		}},
		{"a round trip behind stays", []step{
			{at: 0, followers: []string{"idc-b"}, want: ""},
			{at: 500, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 3}, want: ""},
			{at: 900, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 99}, want: ""},
		}},
		{"rejoin when caught up or nearly", []step{
			{at: 0, followers: []string{"idc-b", "idc-c"}, want: ""},
			{at: 500, followers: []string{"idc-b", "idc-c"}, lag: map[string]int{"idc-b": 200, "idc-c": 300}, want: "leave:idc-b leave:idc-c"},
			{at: 600, followers: []string{"idc-b", "idc-c"}, lag: map[string]int{"idc-b": 26, "idc-c": 25}, want: "rejoin:idc-c"},
			{at: 700, followers: []string{"idc-b", "idc-c"}, want: "rejoin:idc-b"},
		}},
		{"marked down: dropped, back: tracked afresh", []step{
			{at: 0, followers: []string{"idc-b"}, want: ""},
			{at: 500, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 400}, want: "leave:idc-b"},
			{at: 600, followers: nil, want: ""},
			{at: 700, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 600}, want: ""},
			{at: 801, followers: []string{"idc-b"}, lag: map[string]int{"idc-b": 701}, want: "leave:idc-b"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSyncSets()
			for _, st := range tt.steps {
				now := t0.Add(ms(st.at))
				worst := map[string]behind{}
				for dc, l := range st.lag {
					worst[dc] = behind{ack: 1, end: 2, born: now.Add(-ms(l))}
				}
				var got []string
				for _, c := range s.apply("ord", st.followers, worst, now, timeout) {
					got = append(got, fmt.Sprintf("%s:%s", map[bool]string{true: "leave", false: "rejoin"}[c.leave], c.dc))
				}
				slices.Sort(got)
				if g := strings.Join(got, " "); g != st.want {
					t.Fatalf("at %d ms: changes %q, want %q", st.at, g, st.want)
				}
			}
		})
	}
}

// A queue the follower does not follow from here (its placement moved to
// another broker) stops counting once the follower has left it alone, and
// nothing was appended to it, for ten times isr-timeout; a send to it
// makes it count again.
func TestQueueNotFollowedHereStopsCounting(t *testing.T) {
	a, b, _ := isrLeaderQueues(t, "", 2)
	follow(t, a, b) // queue 0 only
	sendQ1 := func(body string) error {
		_, err := a.Send(context.Background(), SendRequest{Topic: "ord", QueueID: 1, Epoch: 1, Messages: []Message{{ID: "id-" + body, Body: []byte(body)}}})
		return err
	}
	staleAt := time.Now()
	if err := sendQ1("stale"); !errors.Is(err, ErrReplicaTimeout) {
		t.Fatalf("send to a queue nobody follows: %v", err)
	}
	if _, err := sendOrd(a, 1, "m0"); !errors.Is(err, ErrReplicaTimeout) {
		t.Fatalf("send while the follower is out: %v", err)
	}
	waitUntil(t, "queue 1 stops counting and idc-b re-enters", func() bool { return a.isr.inSync("ord", "idc-b") })
	if d := time.Since(staleAt); d < abandonFactor*isrTimeout {
		t.Fatalf("re-entered %v after the last append to queue 1, before %v", d, abandonFactor*isrTimeout)
	}
	sendHeld(t, a, b, "m0")
	if err := sendQ1("fresh"); !errors.Is(err, ErrReplicaTimeout) {
		t.Fatalf("send to the unfollowed queue again: %v", err)
	}
	if a.isr.inSync("ord", "idc-b") {
		t.Fatal("a send waiting on the unfollowed queue did not count")
	}
}

func TestAbandoned(t *testing.T) {
	now := time.Unix(1000, 0)
	const after = time.Second
	for _, tt := range []struct {
		name                string
		lastFetch, endMoved time.Duration // before now; -1: never
		alive               bool
		want                bool
	}{
		{"left alone, idle", 2 * time.Second, 2 * time.Second, true, true},
		{"never fetched, idle", -1, 2 * time.Second, true, true},
		{"follower fetches nothing here", 2 * time.Second, 2 * time.Second, false, false},
		{"fetched lately", 500 * time.Millisecond, 2 * time.Second, true, false},
		{"appended lately", 2 * time.Second, 500 * time.Millisecond, true, false},
	} {
		at := func(d time.Duration) time.Time {
			if d < 0 {
				return time.Time{}
			}
			return now.Add(-d)
		}
		if got := abandoned(now, at(tt.lastFetch), at(tt.endMoved), tt.alive, after); got != tt.want {
			t.Errorf("%s: abandoned %v, want %v", tt.name, got, tt.want)
		}
	}
}
