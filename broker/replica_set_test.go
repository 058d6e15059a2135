package broker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// setPair opens the leader and the standby of a replica set in idc-a,
// both holding "ord" (1 queue), the leader in term 1 taking sends.
func setPair(t *testing.T) (leader, standby *Broker) {
	t.Helper()
	short := func(name string) func(*Config) {
		return func(c *Config) {
			c.Name, c.ReplicaTimeout, c.ISRTimeout = name, 300*time.Millisecond, 150*time.Millisecond
		}
	}
	leader = dcBroker(t, "idc-a", t.TempDir(), short("a0"))
	standby = dcBroker(t, "idc-a", t.TempDir(), short("a1"))
	setSetOrder(t, leader, Order{Primary: "idc-a", Replication: "async", Term: 1, SetWrites: true})
	setSetOrder(t, standby, Order{Primary: "idc-a", Replication: "async", Term: 1, Standby: true})
	return leader, standby
}

func setSetOrder(t *testing.T, b *Broker, o Order) {
	t.Helper()
	if err := b.SetTopicOrder("ord", 1, o); err != nil {
		t.Fatal(err)
	}
}

// Admission: once the leader waits for a standby, no send is acked and no
// record is read until the standby holds it, and the ends it returned
// cover every record acked before; a standby leads nothing.
func TestStandbyAdmissionOrdersWaitBeforeListing(t *testing.T) {
	a, s := setPair(t)
	const id = "idc-a/a1"
	if _, err := sendOrd(a, 1, "m0", "m1"); err != nil {
		t.Fatalf("send with no standby to wait for: %v", err)
	}
	if _, err := sendOrd(s, 1, "x"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("send to the standby: %v, want ErrNotLeader", err)
	}
	ends := a.WaitForStandby(id)
	if got := ends[queueKey{"ord", 0}]; got != 2 {
		t.Fatalf("ends %v: want ord/0 at 2, past both acked records", ends)
	}
	if ok, lacks := a.StandbyHolds(id, ends); ok || lacks == "" {
		t.Fatalf("a standby that fetched nothing holds the ends (%v, %q)", ok, lacks)
	}
	if _, err := sendOrd(a, 1, "m2"); !errors.Is(err, ErrReplicaTimeout) {
		t.Fatalf("send while the standby copies nothing: %v, want ErrReplicaTimeout", err)
	}
	if res, err := a.Pull(context.Background(), PullRequest{Topic: "ord", Offset: 0}); err != nil || len(res.Messages) != 0 {
		t.Fatalf("records the standby lacks are readable: %v, %d", err, len(res.Messages))
	}

	stop := followAs(t, a, s, id)
	waitUntil(t, "the standby holds the ends", func() bool { ok, _ := a.StandbyHolds(id, ends); return ok })
	if res, err := sendOrd(a, 1, "m3"); err != nil || res[0].QueueOffset != 3 {
		t.Fatalf("send with the standby copying: %+v, %v", res, err)
	}
	if got := pullAll(t, a, "ord", 0, 0, 4); len(got) != 4 || got[3] != "m3" {
		t.Fatalf("leader reads %v", got)
	}
	stop()
	// Its acknowledgements forgotten (it restarted): it is judged anew.
	a.ForgetStandby(id)
	if ok, _ := a.StandbyHolds(id, ends); ok {
		t.Fatal("a forgotten standby still holds the ends")
	}
	a.StopWaitingForStandby(id)
	if a.WaitsForStandby(id) {
		t.Fatal("still waiting after StopWaitingForStandby")
	}
	if _, err := sendOrd(a, 1, "m4"); err != nil {
		t.Fatalf("send after the leader stopped waiting: %v", err)
	}
}

// The floor counts the leader, the record's in-sync standbys and, for
// replication sync, the follower DCs in the in-sync set; below it a send
// is refused before anything is stored.
func TestMinInSyncCountsSetAndFollowerDCs(t *testing.T) {
	a, _ := setPair(t)
	cases := []struct {
		name  string
		order Order
		out   []string // follower DCs out of the in-sync set
		want  int
	}{
		{"alone", Order{Primary: "idc-a", Replication: "async"}, nil, 1},
		{"standby", Order{Primary: "idc-a", Replication: "async", Term: 1, SetWrites: true, SetFollowers: []string{"idc-a/a1"}}, nil, 2},
		{"async DC not counted", Order{Primary: "idc-a", Replication: "async", Followers: []string{"idc-b"}}, nil, 1},
		{"sync DC", Order{Primary: "idc-a", Replication: "sync", Followers: []string{"idc-b"}}, nil, 2},
		{"2-3", Order{Primary: "idc-a", Replication: "sync", Followers: []string{"idc-b"}, Term: 1, SetWrites: true, SetFollowers: []string{"idc-a/a1"}}, nil, 3},
		{"DC out", Order{Primary: "idc-a", Replication: "sync", Followers: []string{"idc-b"}, SyncPolicy: SyncPolicyDegrade}, []string{"idc-b"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a.isr.mu.Lock()
			a.isr.topics["ord"] = map[string]*syncFollower{}
			for _, dc := range c.out {
				a.isr.topics["ord"][dc] = &syncFollower{out: true}
			}
			a.isr.mu.Unlock()
			tc := TopicConfig{Name: "ord", Order: c.order}
			if got := a.inSyncCopies(tc); got != c.want {
				t.Fatalf("%d copies in sync (%s), want %d", got, a.inSyncNames(tc), c.want)
			}
		})
	}
	a.isr.mu.Lock()
	delete(a.isr.topics, "ord")
	a.isr.mu.Unlock()

	setSetOrder(t, a, Order{Primary: "idc-a", Replication: "async", Term: 1, SetWrites: true, MinInSync: 2})
	before := a.queues[queueKey{"ord", 0}].next
	if _, err := sendOrd(a, 1, "below"); !errors.Is(err, ErrReplicaTimeout) {
		t.Fatalf("send below min-in-sync: %v, want ErrReplicaTimeout", err)
	}
	if after := a.queues[queueKey{"ord", 0}].next; after != before {
		t.Fatalf("a send refused below the floor was stored (next %d -> %d)", before, after)
	}
}
