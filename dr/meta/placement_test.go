package meta

import (
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/etcdtest"
)

// A broker's registration outlives its lease: the placement keeps its slot
// (down), so queue q stays on the same broker while it is gone, and
// forgetting it is refused until it has stopped.
func TestPlacementKeepsADeadBrokersSlot(t *testing.T) {
	_, cli := sharedCluster(t)
	s := newStore(t, cli)
	cache := openCache(t, s)
	leases := map[string]clientv3.LeaseID{}
	for _, name := range []string{"b0", "b1", "b2"} {
		l, err := cli.Grant(testCtx(t), 30)
		if err != nil {
			t.Fatal(err)
		}
		leases[name] = l.ID
		if err := s.PutAlive(testCtx(t), l.ID, Alive{Name: name, DC: "idc-a", Address: name + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool { return len(cache.Placement("idc-a")) == 3 }, "cache did not see three brokers")
	if Place(cache.Placement("idc-a"), 4).Name != "b1" {
		t.Fatalf("queue 4 on %+v, want b1", Place(cache.Placement("idc-a"), 4))
	}
	_, err := s.ForgetBroker(testCtx(t), "idc-a", "b1")
	wantErr(t, err, ErrInUse)

	if _, err := cli.Revoke(testCtx(t), leases["b1"]); err != nil {
		t.Fatal(err)
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool { return len(cache.Brokers("idc-a")) == 2 }, "cache did not see b1 leave")
	slots := cache.Placement("idc-a")
	if len(slots) != 3 || Place(slots, 4).Name != "b1" || Place(slots, 4).Live || !Place(slots, 5).Live {
		t.Fatalf("placement after b1 died: %+v", slots)
	}
	fresh, _, err := s.ListPlacement(testCtx(t))
	if err != nil || len(fresh["idc-a"]) != 3 || fresh["idc-a"][1].Live {
		t.Fatalf("ListPlacement: %+v, %v", fresh, err)
	}

	// A broker that comes back under a new lease keeps its registration.
	l, _ := cli.Grant(testCtx(t), 30)
	if err := s.PutAlive(testCtx(t), l.ID, Alive{Name: "b1", DC: "idc-a", Address: "b1:2"}); err != nil {
		t.Fatal(err)
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool { return Place(cache.Placement("idc-a"), 1).Live }, "b1 not live again")
	if _, err := cli.Revoke(testCtx(t), l.ID); err != nil {
		t.Fatal(err)
	}

	must(t)(s.ForgetBroker(testCtx(t), "idc-a", "b1"))
	etcdtest.Eventually(t, 5*time.Second, func() bool { return len(cache.Placement("idc-a")) == 2 }, "b1 still placed after it was forgotten")
	_, err = s.ForgetBroker(testCtx(t), "idc-a", "b1")
	wantErr(t, err, ErrNotFound)
	if _, err := s.ForgetBroker(testCtx(t), "idc-a", "Bad Name"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
}
