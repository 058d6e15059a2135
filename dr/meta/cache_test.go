package meta

import (
	"errors"
	"reflect"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/etcdtest"
)

func openCache(t testing.TB, s *Store) *Cache {
	t.Helper()
	c, err := NewCache(testCtx(t), s)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func waitRev(t testing.TB, c *Cache, rev int64) {
	t.Helper()
	if err := c.WaitRevision(testCtx(t), rev); err != nil {
		t.Fatalf("WaitRevision(%d): %v", rev, err)
	}
}

func testCache(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	c := openCache(t, s)
	if got := c.Topics(); len(got) != 2 || got[0].Name != "events" || got[1].Name != "orders" {
		t.Fatalf("initial topics %+v", got)
	}
	if got := c.DCs(); len(got) != 2 || got[0].CIDRs[0] != "10.1.0.0/16" {
		t.Fatalf("initial dcs %+v", got)
	}
	changes, cancel := c.Subscribe()
	defer cancel()

	must(t)(s.CreateGroup(ctx, Group{Name: "billing", Subscriptions: subs("orders")}))
	o, orev, _ := s.GetOrdered(ctx, "orders")
	must(t)(s.CASOrdered(ctx, "orders", orev, Ordered{Primary: "idc-b", Epoch: o.Epoch + 1}))
	must(t)(s.SetDCState(ctx, "idc-a", DCDraining, "test"))
	rev := must(t)(s.CASTraffic(ctx, 0, Traffic{Weights: map[string]int{"idc-b": 1}}))
	waitRev(t, c, rev)

	if g, ok := c.Group("billing"); !ok || g.Subscriptions[0].Tags != "*" {
		t.Fatalf("group %+v, %v", g, ok)
	}
	if o, r, ok := c.Ordered("orders"); !ok || o.Primary != "idc-b" || o.Epoch != 2 {
		t.Fatalf("ordered %+v at %d, %v", o, r, ok)
	} else if _, sr, _ := s.GetOrdered(ctx, "orders"); sr != r {
		t.Fatalf("cached ordered revision %d, store %d", r, sr)
	}
	if d, _ := c.DC("idc-a"); d.State != DCDraining {
		t.Fatalf("dc %+v", d)
	}
	if tr, trev := c.Traffic(); tr.Weights["idc-b"] != 1 || trev != rev {
		t.Fatalf("traffic %+v at %d", tr, trev)
	}
	select {
	case <-changes:
	default:
		t.Fatal("no change notification")
	}

	// Copies: changing a returned value does not change the cache.
	g, _ := c.Group("billing")
	g.Subscriptions[0].Topic = "mutated"
	tr, _ := c.Traffic()
	tr.Weights["idc-b"] = 99
	if g2, _ := c.Group("billing"); g2.Subscriptions[0].Topic != "orders" {
		t.Fatal("Group returned the cache's slice")
	}
	if tr2, _ := c.Traffic(); tr2.Weights["idc-b"] != 1 {
		t.Fatal("Traffic returned the cache's map")
	}

	must(t)(s.DeleteGroup(ctx, "billing"))
	rev = must(t)(s.DeleteTopic(ctx, "orders"))
	waitRev(t, c, rev)
	if _, ok := c.Topic("orders"); ok {
		t.Fatal("deleted topic still cached")
	}
	if _, _, ok := c.Ordered("orders"); ok {
		t.Fatal("deleted ordered record still cached")
	}
	if len(c.Groups()) != 0 {
		t.Fatalf("groups %+v", c.Groups())
	}

	// A write outside the watched ranges: the revision advances through a
	// progress report.
	must(t)(s.CreateGroup(ctx, Group{Name: "audit", Subscriptions: subs("events")}))
	rev = must(t)(s.PutOffsets(ctx, []OffsetKV{{OffsetKey{"audit", "events", "idc-a", 0}, Offset{Offset: 1}}}))
	waitRev(t, c, rev)
	if c.Revision() < rev {
		t.Fatalf("Revision %d < %d", c.Revision(), rev)
	}
}

func testCacheCorruptAndClose(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	if _, err := cli.Put(ctx, s.Key("topics/broken"), "{"); err != nil {
		t.Fatal(err)
	}
	c, err := NewCache(ctx, s)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	if _, ok := c.Topic("broken"); ok || len(c.Topics()) != 2 {
		t.Fatalf("corrupt topic cached: %+v", c.Topics())
	}
	resp, err := cli.Put(ctx, s.Key("topics/events"), "[]")
	if err != nil {
		t.Fatal(err)
	}
	waitRev(t, c, resp.Header.Revision)
	if _, ok := c.Topic("events"); ok {
		t.Fatal("topic overwritten with garbage still cached with its old value")
	}

	changes, _ := c.Subscribe()
	c.Close()
	c.Close()
	if _, ok := <-changes; ok {
		t.Fatal("subscription open after Close")
	}
	if err := c.WaitRevision(ctx, c.Revision()+100); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitRevision after Close = %v", err)
	}
	if ch, _ := c.Subscribe(); ch != nil {
		if _, ok := <-ch; ok {
			t.Fatal("Subscribe after Close returned an open channel")
		}
	}
}

// testCacheCompaction starts the watch from a revision that etcd has
// compacted away: the cache must re-list and converge.
func testCacheCompaction(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	c := newCache(s)
	rev, err := c.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(t)(s.CreateTopic(ctx, Topic{Name: "later", Queues: 1}))
	last := must(t)(s.SetDCState(ctx, "idc-b", DCDown, "test"))
	if _, err := cli.Compact(ctx, last); err != nil {
		t.Fatalf("compact: %v", err)
	}
	c.start(rev)
	t.Cleanup(c.Close)
	waitRev(t, c, last)
	if _, ok := c.Topic("later"); !ok {
		t.Fatal("cache did not re-list after compaction")
	}
	if d, _ := c.DC("idc-b"); d.State != DCDown {
		t.Fatalf("dc %+v", d)
	}
}

// TestFaults takes members away: with one of three gone reads and writes
// work and the cache follows a leader change; with two gone a write fails
// fast with ErrUnavailable; once one returns, writes succeed and the cache
// catches up.
func TestFaults(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	cli := c.Client(t)
	s := newStore(t, cli)
	seed(t, s)
	cache := openCache(t, s)

	// The leader crashes: a new one is elected and everything goes on.
	leader := c.Leader(t, 10*time.Second)
	killed := time.Now()
	c.Kill(leader)
	var rev int64
	etcdtest.Eventually(t, 15*time.Second, func() bool {
		var err error
		rev, err = s.CreateTopic(shortCtx(t, 500*time.Millisecond), Topic{Name: "after-leader-loss", Queues: 1})
		return err == nil || errors.Is(err, ErrExists)
	}, "no write after the leader was killed")
	t.Logf("writable again %v after the leader was killed", time.Since(killed))
	for i := range 5 {
		if _, err := s.SetDCState(shortCtx(t, 5*time.Second), "idc-b", DCDraining, "test"); err != nil {
			t.Fatalf("write %d with one member down: %v", i, err)
		}
	}
	if _, _, err := s.GetTopic(shortCtx(t, 5*time.Second), "after-leader-loss"); err != nil {
		t.Fatalf("read with one member down: %v", err)
	}
	if rev == 0 { // created by an attempt whose reply was lost
		_, rev, _ = s.GetTopic(testCtx(t), "after-leader-loss")
	}
	waitRev(t, cache, rev)
	if _, ok := cache.Topic("after-leader-loss"); !ok {
		t.Fatal("cache missed a write after the leader change")
	}

	// A second member goes: no quorum.
	second := (leader + 1) % 3
	c.Kill(second)
	start := time.Now()
	_, err := s.CreateTopic(shortCtx(t, 2*time.Second), Topic{Name: "no-quorum", Queues: 1})
	took := time.Since(start)
	wantErr(t, err, ErrUnavailable)
	if took > 3*time.Second {
		t.Fatalf("write without quorum took %v", took)
	}
	t.Logf("write without quorum failed after %v: %v", took, err)
	_, _, err = s.GetTopic(shortCtx(t, 2*time.Second), "events")
	wantErr(t, err, ErrUnavailable)

	// One comes back: writes work again and the cache catches up.
	c.Restart(t, leader)
	etcdtest.Eventually(t, 20*time.Second, func() bool {
		var err error
		rev, err = s.PutDC(shortCtx(t, 2*time.Second), DC{Name: "witness"})
		return err == nil
	}, "no write after restarting a member")
	waitRev(t, cache, rev)
	if _, ok := cache.DC("witness"); !ok {
		t.Fatal("cache missed a write after the restart")
	}
	topics, _, err := s.ListTopics(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The refused write may still commit once the quorum is back (its
	// proposal can survive in the log); it is the only possible extra.
	var got []string
	for _, tp := range topics {
		if tp.Name != "no-quorum" {
			got = append(got, tp.Name)
		}
	}
	if want := []string{"after-leader-loss", "events", "orders"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics %v, want %v", got, want)
	}
}
