package meta

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/etcdtest"
)

// A replica set is one slot of its DC's placement, named by its leader;
// it is not live before its record exists. A promotion needs the standby
// in sync and live and the leader's liveness record gone, and raises the
// epoch of the DC's ordered topics in the same transaction.
func TestReplicaSetPlacementAndPromotion(t *testing.T) {
	_, cli := sharedCluster(t)
	s := newStore(t, cli)
	cache := openCache(t, s)
	ctx := testCtx(t)
	if _, err := s.PutDC(ctx, DC{Name: "idc-s", State: DCActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic(ctx, Topic{Name: "set-orders", Ordered: true, Primary: "idc-s", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	leases := map[string]clientv3.LeaseID{}
	for _, a := range []Alive{{Name: "s0", Set: "pair"}, {Name: "s1", Set: "pair"}, {Name: "solo"}, {Name: "t0", Set: "trio"}} {
		l, err := cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		leases[a.Name] = l.ID
		a.DC, a.Address = "idc-s", a.Name+":1"
		if err := s.PutAlive(ctx, l.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	// Registrations and liveness records are watched apart: wait for both.
	etcdtest.Eventually(t, 5*time.Second, func() bool {
		sl := cache.Placement("idc-s")
		return len(cache.Members("idc-s")) == 4 && len(sl) == 3 && sl[1].Live && len(sl[0].Standbys) == 1 && sl[0].Standbys[0].Live
	}, "cache did not see four live brokers")
	slots := cache.Placement("idc-s")
	if len(slots) != 3 || slots[0].Set != "pair" || slots[0].Name != "s0" || slots[0].Live || !slots[0].Named ||
		slots[1].Name != "solo" || !slots[1].Live || slots[1].Named {
		t.Fatalf("placement before the set's record: %+v", slots)
	}
	// A named set's first member, alone so far, does not lead without a
	// record either: a later member would otherwise find it leading alone.
	if trio := slots[2]; trio.Set != "trio" || trio.Name != "t0" || trio.Live || len(trio.Standbys) != 0 {
		t.Fatalf("a named set of one before its record: %+v", trio)
	}
	if _, _, err := s.CreateReplicaSet(ctx, "idc-s", "trio", "t0"); err != nil {
		t.Fatal(err)
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool { t0 := cache.Placement("idc-s")[2]; return t0.Live && t0.Term == 1 }, "named set of one not live after its record")
	if len(slots[0].Standbys) != 1 || slots[0].Standbys[0].Name != "s1" || !slots[0].Standbys[0].Live {
		t.Fatalf("standbys: %+v", slots[0].Standbys)
	}

	rec, rev, err := s.CreateReplicaSet(ctx, "idc-s", "pair", "s0")
	if err != nil || rec.Term != 1 {
		t.Fatalf("create: %+v, %v", rec, err)
	}
	_, _, err = s.CreateReplicaSet(ctx, "idc-s", "pair", "s1")
	wantErr(t, err, ErrConflict)
	etcdtest.Eventually(t, 5*time.Second, func() bool { return Place(cache.Placement("idc-s"), 0).Live }, "set not live after its record")

	// Not in sync yet: no promotion.
	_, _, err = s.PromoteReplicaSet(ctx, rec, rev, "s1", nil)
	wantErr(t, err, ErrConflict)
	rev, err = s.SetReplicaSetInSync(ctx, rec, rev, []string{"s1"}, "caught up")
	if err != nil {
		t.Fatal(err)
	}
	rec.InSync = []string{"s1"}
	// The leader is still live: the transaction refuses.
	o, orev, err := s.GetOrdered(ctx, "set-orders")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.PromoteReplicaSet(ctx, rec, rev, "s1", []OrderedBump{{Ordered: o, Rev: orev}})
	wantErr(t, err, ErrConflict)
	if _, err := cli.Revoke(ctx, leases["s0"]); err != nil {
		t.Fatal(err)
	}
	// The set's recorded leader cannot be forgotten: nothing could replace it.
	_, err = s.ForgetBroker(ctx, "idc-s", "s0")
	wantErr(t, err, ErrInUse)
	// A stale fencing record's revision loses too.
	_, _, err = s.PromoteReplicaSet(ctx, rec, rev, "s1", []OrderedBump{{Ordered: o, Rev: orev - 1}})
	wantErr(t, err, ErrConflict)
	got, _, err := s.PromoteReplicaSet(ctx, rec, rev, "s1", []OrderedBump{{Ordered: o, Rev: orev}})
	if err != nil || got.Leader != "s1" || got.Term != 2 || len(got.InSync) != 0 {
		t.Fatalf("promote: %+v, %v", got, err)
	}
	o2, orev2, _ := s.GetOrdered(ctx, "set-orders")
	if o2.Epoch != o.Epoch+1 || o2.Primary != "idc-s" {
		t.Fatalf("fencing record after the promotion: %+v (before %+v)", o2, o)
	}
	// The new leader leads at the raised epoch while its view still
	// shows the replaced record, and follows the record once it is newer.
	if f := got.Fenced["set-orders"]; f != (FencedEpoch{Epoch: o2.Epoch, Replaced: orev}) {
		t.Fatalf("fenced epochs %+v", got.Fenced)
	}
	slot := Slot{Fenced: got.Fenced}
	for _, c := range []struct {
		epoch uint64
		rev   int64
		want  uint64
	}{{o.Epoch, orev, o2.Epoch}, {o2.Epoch, orev2, o2.Epoch}, {1, orev2 + 5, 1}} {
		if e := slot.EpochFor("set-orders", c.epoch, c.rev); e != c.want {
			t.Errorf("EpochFor(epoch %d at rev %d) = %d, want %d", c.epoch, c.rev, e, c.want)
		}
	}
	if _, err := s.ForgetBroker(ctx, "idc-s", "s0"); err != nil {
		t.Fatalf("forget the replaced leader: %v", err)
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool {
		s0 := Place(cache.Placement("idc-s"), 0)
		return s0.Name == "s1" && s0.Live && s0.Term == 2 && len(s0.Standbys) == 0
	}, "cache did not see s1 lead the set, s0 forgotten")
}
