package meta

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// TestStore runs the store's functional tests on one shared cluster.
func TestStore(t *testing.T) {
	_, cli := sharedCluster(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *clientv3.Client)
	}{
		{"DCs", testDCs},
		{"TopicRoundTrip", testTopicRoundTrip},
		{"TopicRefusals", testTopicRefusals},
		{"UpdateTopic", testUpdateTopic},
		{"DeleteTopic", testDeleteTopic},
		{"Groups", testGroups},
		{"GroupRefusals", testGroupRefusals},
		{"Ordered", testOrdered},
		{"ConcurrentCASOrdered", testConcurrentCASOrdered},
		{"Traffic", testTraffic},
		{"Offsets", testOffsets},
		{"JSON", testJSON},
		{"Corrupt", testCorrupt},
		{"Cache", testCache},
		{"CacheCorruptAndClose", testCacheCorruptAndClose},
		{"CacheCompaction", testCacheCompaction},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cli) })
	}
}

func testDCs(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return now }

	rev := must(t)(s.PutDC(ctx, DC{Name: "idc-a", CIDRs: []string{"10.1.0.0/16", "fd00::/8"}, UpdatedBy: "op"}))
	got, grev, err := s.GetDC(ctx, "idc-a")
	must(t)(grev, err)
	want := DC{Name: "idc-a", CIDRs: []string{"10.1.0.0/16", "fd00::/8"}, State: DCActive, UpdatedBy: "op", UpdatedAt: now}
	if !reflect.DeepEqual(got, want) || grev != rev {
		t.Fatalf("GetDC = %+v at %d, want %+v at %d", got, grev, want, rev)
	}

	must(t)(s.SetDCState(ctx, "idc-a", DCDraining, "controller"))
	// Re-registering with an empty state keeps the state.
	must(t)(s.PutDC(ctx, DC{Name: "idc-a", CIDRs: []string{"10.9.0.0/16"}}))
	got, _, _ = s.GetDC(ctx, "idc-a")
	if got.State != DCDraining || got.CIDRs[0] != "10.9.0.0/16" {
		t.Fatalf("after re-register: %+v", got)
	}
	must(t)(s.PutDC(ctx, DC{Name: "witness"}))
	list, _, err := s.ListDCs(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "idc-a" || list[1].Name != "witness" {
		t.Fatalf("ListDCs = %+v, %v", list, err)
	}

	_, _, err = s.GetDC(ctx, "nope")
	wantErr(t, err, ErrNotFound)
	if !strings.Contains(err.Error(), "duomq dc put nope") {
		t.Fatalf("not-found error names no command: %v", err)
	}
	_, err = s.SetDCState(ctx, "nope", DCDown, "x")
	wantErr(t, err, ErrNotFound)

	before := etcdRev(t, cli)
	for _, tc := range []struct {
		name  string
		op    func() error
		name2 bool // also names.ErrInvalid
	}{
		{"bad name", func() error { _, err := s.PutDC(ctx, DC{Name: "idc a"}); return err }, true},
		{"empty name", func() error { _, err := s.PutDC(ctx, DC{}); return err }, true},
		{"bad cidr", func() error { _, err := s.PutDC(ctx, DC{Name: "idc-c", CIDRs: []string{"10.0.0.1"}}); return err }, false},
		{"bad state", func() error { _, err := s.PutDC(ctx, DC{Name: "idc-c", State: "up"}); return err }, false},
		{"set bad state", func() error { _, err := s.SetDCState(ctx, "idc-a", "gone", "x"); return err }, false},
		{"set bad name", func() error { _, err := s.SetDCState(ctx, "a/b", DCDown, "x"); return err }, true},
		{"get bad name", func() error { _, _, err := s.GetDC(ctx, "a/b"); return err }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			wantErr(t, err, ErrInvalid)
			if tc.name2 && !errors.Is(err, names.ErrInvalid) {
				t.Fatalf("%v does not wrap names.ErrInvalid", err)
			}
		})
	}
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused writes changed etcd: revision %d -> %d", before, after)
	}
}

func testTopicRoundTrip(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)

	got, _, err := s.GetTopic(ctx, "events")
	must(t)(0, err)
	want := Topic{Name: "events", Queues: 4, Replication: ReplicationNone, RetentionAge: DefaultRetentionAge, MaxMessageBytes: DefaultMaxMessageBytes}
	if got != want {
		t.Fatalf("GetTopic = %+v, want %+v", got, want)
	}
	rev := must(t)(s.CreateTopic(ctx, Topic{Name: "audit", Queues: 2, Replication: ReplicationAsync, RetentionAge: 90 * time.Minute, MaxMessageBytes: 1024}))
	got, grev, _ := s.GetTopic(ctx, "audit")
	if got.RetentionAge != 90*time.Minute || got.MaxMessageBytes != 1024 || grev != rev {
		t.Fatalf("audit = %+v at %d (created at %d)", got, grev, rev)
	}

	orders, _, _ := s.GetTopic(ctx, "orders")
	if orders.Replication != ReplicationSync || orders.Primary != "idc-a" || orders.SyncPolicy != SyncPolicyFail {
		t.Fatalf("ordered defaults: %+v", orders)
	}
	if audit, _, _ := s.GetTopic(ctx, "audit"); audit.SyncPolicy != "" {
		t.Fatalf("async topic got sync policy %q", audit.SyncPolicy)
	}
	must(t)(s.CreateTopic(ctx, Topic{Name: "ledger", Queues: 1, Replication: ReplicationSync, SyncPolicy: SyncPolicyDegrade}))
	if ledger, _, _ := s.GetTopic(ctx, "ledger"); ledger.SyncPolicy != SyncPolicyDegrade {
		t.Fatalf("sync policy %q stored, want degrade", ledger.SyncPolicy)
	}
	if resp, err := cli.Get(ctx, s.Key("topics/ledger")); err != nil || !strings.Contains(string(resp.Kvs[0].Value), `"sync_policy":"degrade"`) {
		t.Fatalf("stored ledger %s, %v", resp.Kvs[0].Value, err)
	}
	_, err = s.DeleteTopic(ctx, "ledger")
	must(t)(0, err)
	o, orev, err := s.GetOrdered(ctx, "orders")
	if err != nil || o != (Ordered{Topic: "orders", Primary: "idc-a", Epoch: 1}) {
		t.Fatalf("GetOrdered = %+v, %v", o, err)
	}
	if _, trev, _ := s.GetTopic(ctx, "orders"); trev != orev {
		t.Fatalf("topic (rev %d) and ordered record (rev %d) not in one transaction", trev, orev)
	}
	_, _, err = s.GetOrdered(ctx, "events")
	wantErr(t, err, ErrNotFound)

	list, _, err := s.ListTopics(ctx)
	if err != nil || len(list) != 3 || list[0].Name != "audit" || list[2].Name != "orders" {
		t.Fatalf("ListTopics = %+v, %v", list, err)
	}

	// The stored form: version first, retention as a duration string.
	resp, err := cli.Get(ctx, s.Key("topics/audit"))
	if err != nil || !strings.HasPrefix(string(resp.Kvs[0].Value), `{"version":1,"name":"audit"`) ||
		!strings.Contains(string(resp.Kvs[0].Value), `"retention_age":"1h30m0s"`) {
		t.Fatalf("stored value %s, %v", resp.Kvs[0].Value, err)
	}

	_, _, err = s.GetTopic(ctx, "x")
	wantErr(t, err, ErrNotFound)
	if want := `topic "x" does not exist: create it with: duomq topic create x --queues N`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func testTopicRefusals(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	before := etcdRev(t, cli)
	for _, tc := range []struct {
		name  string
		topic Topic
		want  error
		text  string
	}{
		{"bad name", Topic{Name: "bad name!", Queues: 1}, names.ErrInvalid, "not allowed"},
		{"empty name", Topic{Queues: 1}, names.ErrInvalid, "empty"},
		{"long name", Topic{Name: strings.Repeat("a", 128), Queues: 1}, names.ErrInvalid, "longer"},
		{"zero queues", Topic{Name: "t", Queues: 0}, ErrInvalid, "queues 0"},
		{"too many queues", Topic{Name: "t", Queues: 1025}, ErrInvalid, "queues 1025"},
		{"bad replication", Topic{Name: "t", Queues: 1, Replication: "quorum"}, ErrInvalid, "replication"},
		{"bad sync policy", Topic{Name: "t", Queues: 1, Replication: ReplicationSync, SyncPolicy: "best-effort"}, ErrInvalid, "use fail or degrade"},
		{"sync policy without sync", Topic{Name: "t", Queues: 1, Replication: ReplicationAsync, SyncPolicy: SyncPolicyDegrade}, ErrInvalid, "replication sync only"},
		{"ordered without primary", Topic{Name: "t", Queues: 1, Ordered: true}, ErrInvalid, "needs a primary"},
		{"ordered bad primary", Topic{Name: "t", Queues: 1, Ordered: true, Primary: "a b"}, names.ErrInvalid, "primary"},
		{"ordered unknown primary", Topic{Name: "t", Queues: 1, Ordered: true, Primary: "idc-z"}, ErrNotFound, "duomq dc put idc-z"},
		{"ordered no replication", Topic{Name: "t", Queues: 1, Ordered: true, Primary: "idc-a", Replication: ReplicationNone}, ErrInvalid, "sync or async"},
		{"unordered with primary", Topic{Name: "t", Queues: 1, Primary: "idc-a"}, ErrInvalid, "unordered"},
		{"negative retention", Topic{Name: "t", Queues: 1, RetentionAge: -time.Hour}, ErrInvalid, "retention"},
		{"message too large", Topic{Name: "t", Queues: 1, MaxMessageBytes: MaxMessageBytesLimit + 1}, ErrInvalid, "max message bytes"},
		{"negative message size", Topic{Name: "t", Queues: 1, MaxMessageBytes: -1}, ErrInvalid, "max message bytes"},
		{"exists", Topic{Name: "events", Queues: 4}, ErrExists, "already exists"},
		{"ordered exists", Topic{Name: "orders", Queues: 8, Ordered: true, Primary: "idc-b"}, ErrExists, "already exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateTopic(ctx, tc.topic)
			wantErr(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q does not say %q", err, tc.text)
			}
			if errors.Is(tc.want, names.ErrInvalid) {
				wantErr(t, err, ErrInvalid)
			}
		})
	}
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused writes changed etcd: revision %d -> %d", before, after)
	}
	if _, _, err := s.GetOrdered(ctx, "t"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused ordered topic left a record: %v", err)
	}
}

func testUpdateTopic(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	ev, rev, _ := s.GetTopic(ctx, "events")
	ev.Queues, ev.Replication = 6, ReplicationAsync
	rev2 := must(t)(s.UpdateTopic(ctx, ev, rev))
	got, grev, _ := s.GetTopic(ctx, "events")
	if got.Queues != 6 || got.Replication != ReplicationAsync || grev != rev2 {
		t.Fatalf("after update: %+v at %d", got, grev)
	}

	ord, orev, _ := s.GetTopic(ctx, "orders")
	before := etcdRev(t, cli)
	for _, tc := range []struct {
		name string
		t    Topic
		rev  int64
		want error
	}{
		{"stale revision", ev, rev, ErrConflict},
		{"shrink queues", withQueues(ev, 2), rev2, ErrInvalid},
		{"make ordered", Topic{Name: "events", Queues: 6, Ordered: true, Primary: "idc-a"}, rev2, ErrInvalid},
		{"move primary", withPrimary(ord, "idc-b"), orev, ErrInvalid},
		{"make unordered", Topic{Name: "orders", Queues: 8}, orev, ErrInvalid},
		{"unknown topic", Topic{Name: "nope", Queues: 1}, 1, ErrNotFound},
		{"invalid", Topic{Name: "events", Queues: 0}, rev2, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateTopic(ctx, tc.t, tc.rev)
			wantErr(t, err, tc.want)
		})
	}
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused updates changed etcd: revision %d -> %d", before, after)
	}
}

func withQueues(t Topic, q int) Topic        { t.Queues = q; return t }
func withPrimary(t Topic, p string) Topic    { t.Primary = p; return t }
func withTopics(g Group, ts ...string) Group { g.Subscriptions = subs(ts...); return g }
func subs(topics ...string) []Subscription {
	out := make([]Subscription, len(topics))
	for i, t := range topics {
		out[i] = Subscription{Topic: t}
	}
	return out
}

func testDeleteTopic(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	must(t)(s.CreateGroup(ctx, Group{Name: "billing", Subscriptions: subs("orders")}))
	must(t)(s.CreateGroup(ctx, Group{Name: "audit", Subscriptions: subs("events")}))
	must(t)(s.PutOffsets(ctx, []OffsetKV{
		{OffsetKey{"billing", "orders", "idc-a", 0}, Offset{Offset: 5}},
		{OffsetKey{"audit", "orders", "idc-a", 0}, Offset{Offset: 7}}, // left from an old subscription
	}))

	before := etcdRev(t, cli)
	_, err := s.DeleteTopic(ctx, "orders")
	wantErr(t, err, ErrInUse)
	if !strings.Contains(err.Error(), "billing") {
		t.Fatalf("in-use error names no group: %v", err)
	}
	_, err = s.DeleteTopic(ctx, "nope")
	wantErr(t, err, ErrNotFound)
	_, err = s.DeleteTopic(ctx, "bad/name")
	wantErr(t, err, ErrInvalid)
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused deletes changed etcd: revision %d -> %d", before, after)
	}

	must(t)(s.DeleteGroup(ctx, "billing"))
	must(t)(s.DeleteTopic(ctx, "orders"))
	if _, _, err := s.GetOrdered(ctx, "orders"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ordered record survived its topic: %v", err)
	}
	offs, _, err := s.ListOffsets(ctx, "audit")
	if err != nil || len(offs) != 0 {
		t.Fatalf("offsets of the deleted topic survived: %+v, %v", offs, err)
	}
	// The name is free again, with a fresh epoch.
	must(t)(s.CreateTopic(ctx, Topic{Name: "orders", Queues: 8, Ordered: true, Primary: "idc-b"}))
	if o, _, _ := s.GetOrdered(ctx, "orders"); o.Epoch != 1 || o.Primary != "idc-b" {
		t.Fatalf("recreated ordered record %+v", o)
	}
}

func testGroups(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	rev := must(t)(s.CreateGroup(ctx, Group{Name: "billing", Subscriptions: []Subscription{{Topic: "orders", Tags: "paid || refunded"}, {Topic: "events"}}}))
	got, grev, err := s.GetGroup(ctx, "billing")
	want := Group{
		Name:          "billing",
		Subscriptions: []Subscription{{Topic: "orders", Tags: "paid || refunded"}, {Topic: "events", Tags: "*"}},
		MaxRetries:    DefaultMaxRetries, Mode: ModeClustering,
	}
	if err != nil || grev != rev || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetGroup = %+v at %d, %v; want %+v at %d", got, grev, err, want, rev)
	}

	got.Mode, got.MaxRetries, got.Ordered = ModeBroadcast, 3, true
	got.Subscriptions = got.Subscriptions[:1]
	rev2 := must(t)(s.UpdateGroup(ctx, got, grev))
	_, err = s.UpdateGroup(ctx, got, grev)
	wantErr(t, err, ErrConflict)
	_, err = s.UpdateGroup(ctx, withTopics(got, "missing"), rev2)
	wantErr(t, err, ErrNotFound)
	if !strings.Contains(err.Error(), "duomq topic create missing") {
		t.Fatalf("error names no command: %v", err)
	}
	_, err = s.UpdateGroup(ctx, Group{Name: "ghost", Subscriptions: subs("events")}, 5)
	wantErr(t, err, ErrNotFound)

	must(t)(s.CreateGroup(ctx, Group{Name: "audit", Subscriptions: subs("events")}))
	list, _, err := s.ListGroups(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "audit" || list[1].Mode != ModeBroadcast {
		t.Fatalf("ListGroups = %+v, %v", list, err)
	}

	must(t)(s.PutOffsets(ctx, []OffsetKV{{OffsetKey{"billing", "orders", "idc-a", 1}, Offset{Offset: 9}}}))
	must(t)(s.DeleteGroup(ctx, "billing"))
	_, _, err = s.GetGroup(ctx, "billing")
	wantErr(t, err, ErrNotFound)
	if want := `group "billing" does not exist: create it with: duomq group create billing`; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	_, _, err = s.ListOffsets(ctx, "billing")
	wantErr(t, err, ErrNotFound)
	resp, _ := cli.Get(ctx, s.Key("offsets/"), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if resp.Count != 0 {
		t.Fatalf("%d offsets survived their group", resp.Count)
	}
	_, err = s.DeleteGroup(ctx, "billing")
	wantErr(t, err, ErrNotFound)
}

func testGroupRefusals(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	must(t)(s.CreateGroup(ctx, Group{Name: "billing", Subscriptions: subs("orders")}))
	before := etcdRev(t, cli)
	for _, tc := range []struct {
		name  string
		group Group
		want  error
	}{
		{"bad name", Group{Name: "%DLQ%x", Subscriptions: subs("orders")}, names.ErrInvalid},
		{"bad topic name", Group{Name: "g", Subscriptions: subs("a b")}, names.ErrInvalid},
		{"duplicate topic", Group{Name: "g", Subscriptions: subs("orders", "orders")}, ErrInvalid},
		{"control char in tags", Group{Name: "g", Subscriptions: []Subscription{{Topic: "orders", Tags: "a\nb"}}}, ErrInvalid},
		{"long tags", Group{Name: "g", Subscriptions: []Subscription{{Topic: "orders", Tags: strings.Repeat("t", MaxTagsLen+1)}}}, ErrInvalid},
		{"negative retries", Group{Name: "g", Subscriptions: subs("orders"), MaxRetries: -1}, ErrInvalid},
		{"too many retries", Group{Name: "g", Subscriptions: subs("orders"), MaxRetries: MaxRetriesLimit + 1}, ErrInvalid},
		{"bad mode", Group{Name: "g", Subscriptions: subs("orders"), Mode: "fanout"}, ErrInvalid},
		{"unknown topic", Group{Name: "g", Subscriptions: subs("orders", "missing")}, ErrNotFound},
		{"exists", Group{Name: "billing", Subscriptions: subs("orders")}, ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateGroup(ctx, tc.group)
			wantErr(t, err, tc.want)
		})
	}
	_, err := s.UpdateGroup(ctx, Group{Name: "billing", Subscriptions: subs("orders")}, 0)
	wantErr(t, err, ErrInvalid)
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused writes changed etcd: revision %d -> %d", before, after)
	}
}

func testOrdered(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	o, rev, _ := s.GetOrdered(ctx, "orders")
	next := Ordered{Primary: "idc-b", Epoch: o.Epoch + 1}
	rev2 := must(t)(s.CASOrdered(ctx, "orders", rev, next))
	got, grev, _ := s.GetOrdered(ctx, "orders")
	if got != (Ordered{Topic: "orders", Primary: "idc-b", Epoch: 2}) || grev != rev2 {
		t.Fatalf("after CAS: %+v at %d", got, grev)
	}

	before := etcdRev(t, cli)
	for _, tc := range []struct {
		name  string
		topic string
		rev   int64
		o     Ordered
		want  error
	}{
		{"stale revision", "orders", rev, Ordered{Primary: "idc-a", Epoch: 3}, ErrConflict},
		{"same epoch", "orders", rev2, Ordered{Primary: "idc-a", Epoch: 2}, ErrInvalid},
		{"epoch zero", "orders", rev2, Ordered{Primary: "idc-a"}, ErrInvalid},
		{"unknown primary", "orders", rev2, Ordered{Primary: "idc-z", Epoch: 3}, ErrNotFound},
		{"bad primary", "orders", rev2, Ordered{Primary: "", Epoch: 3}, names.ErrInvalid},
		{"other topic", "orders", rev2, Ordered{Topic: "events", Primary: "idc-a", Epoch: 3}, ErrInvalid},
		{"unordered topic", "events", 1, Ordered{Primary: "idc-a", Epoch: 2}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CASOrdered(ctx, tc.topic, tc.rev, tc.o)
			wantErr(t, err, tc.want)
		})
	}
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused writes changed etcd: revision %d -> %d", before, after)
	}
	// UpdateTopic leaves the fencing record alone.
	tp, trev, _ := s.GetTopic(ctx, "orders")
	must(t)(s.UpdateTopic(ctx, withQueues(tp, 16), trev))
	if got, _, _ := s.GetOrdered(ctx, "orders"); got.Epoch != 2 {
		t.Fatalf("UpdateTopic changed the ordered record: %+v", got)
	}
}

// testConcurrentCASOrdered races two controllers on the same revision:
// exactly one wins each round.
func testConcurrentCASOrdered(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	for round := range 10 {
		o, rev, err := s.GetOrdered(ctx, "orders")
		must(t)(rev, err)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, 2)
		)
		for i, primary := range []string{"idc-a", "idc-b"} {
			wg.Go(func() {
				<-start
				_, errs[i] = s.CASOrdered(ctx, "orders", rev, Ordered{Primary: primary, Epoch: o.Epoch + 1})
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("round %d: loser got %v, want ErrConflict", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners (%v)", round, wins, errs)
		}
		if got, _, _ := s.GetOrdered(ctx, "orders"); got.Epoch != o.Epoch+1 {
			t.Fatalf("round %d: epoch %d, want %d", round, got.Epoch, o.Epoch+1)
		}
	}
}

func testTraffic(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	tr, rev, err := s.GetTraffic(ctx)
	if err != nil || rev != 0 || !reflect.DeepEqual(tr, Traffic{}) {
		t.Fatalf("initial traffic %+v at %d, %v", tr, rev, err)
	}
	want := Traffic{
		Weights:        map[string]int{"idc-a": 50, "idc-b": 50},
		TopicOverrides: map[string]map[string]int{"events": {"idc-a": 100}},
		BlockedDCs:     []string{"idc-b"},
	}
	rev1 := must(t)(s.CASTraffic(ctx, 0, want))
	_, err = s.CASTraffic(ctx, 0, want)
	wantErr(t, err, ErrConflict)
	got, grev, _ := s.GetTraffic(ctx)
	if !reflect.DeepEqual(got, want) || grev != rev1 {
		t.Fatalf("traffic %+v at %d, want %+v at %d", got, grev, want, rev1)
	}
	rev2 := must(t)(s.CASTraffic(ctx, rev1, Traffic{Weights: map[string]int{"idc-a": 1}}))

	before := etcdRev(t, cli)
	for _, tc := range []struct {
		name string
		rev  int64
		tr   Traffic
		want error
	}{
		{"stale", rev1, Traffic{}, ErrConflict},
		{"negative weight", rev2, Traffic{Weights: map[string]int{"idc-a": -1}}, ErrInvalid},
		{"huge weight", rev2, Traffic{Weights: map[string]int{"idc-a": MaxWeight + 1}}, ErrInvalid},
		{"all zero", rev2, Traffic{Weights: map[string]int{"idc-a": 0, "idc-b": 0}}, ErrInvalid},
		{"bad dc name", rev2, Traffic{Weights: map[string]int{"idc a": 1}}, names.ErrInvalid},
		{"unknown dc", rev2, Traffic{Weights: map[string]int{"idc-z": 1}}, ErrNotFound},
		{"unknown blocked dc", rev2, Traffic{BlockedDCs: []string{"idc-z"}}, ErrNotFound},
		{"blocked twice", rev2, Traffic{BlockedDCs: []string{"idc-a", "idc-a"}}, ErrInvalid},
		{"unknown override topic", rev2, Traffic{TopicOverrides: map[string]map[string]int{"nope": {"idc-a": 1}}}, ErrNotFound},
		{"empty override", rev2, Traffic{TopicOverrides: map[string]map[string]int{"events": {}}}, ErrInvalid},
		{"negative revision", -1, Traffic{}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CASTraffic(ctx, tc.rev, tc.tr)
			wantErr(t, err, tc.want)
		})
	}
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused writes changed etcd: revision %d -> %d", before, after)
	}
}

func testOffsets(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	seed(t, s)
	must(t)(s.CreateGroup(ctx, Group{Name: "billing", Subscriptions: subs("orders", "events")}))
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var in []OffsetKV
	for _, topic := range []string{"orders", "events"} {
		for _, dc := range []string{"idc-a", "idc-b"} {
			for q := range 75 {
				in = append(in, OffsetKV{OffsetKey{"billing", topic, dc, q}, Offset{Offset: int64(q * 10), UpdatedAt: at}})
			}
		}
	}
	before := etcdRev(t, cli)
	rev := must(t)(s.PutOffsets(ctx, in))
	if want := before + 3; rev != want { // 300 offsets: 128 + 128 + 44
		t.Fatalf("300 offsets written at revision %d, want %d (3 transactions)", rev, want)
	}
	out, _, err := s.ListOffsets(ctx, "billing")
	if err != nil || len(out) != len(in) {
		t.Fatalf("ListOffsets: %d offsets, %v", len(out), err)
	}
	byKey := make(map[OffsetKey]Offset)
	for _, o := range out {
		byKey[o.OffsetKey] = o.Offset
	}
	for _, o := range in {
		if got := byKey[o.OffsetKey]; got.Offset != o.Offset.Offset || !got.UpdatedAt.Equal(at) {
			t.Fatalf("offset %+v = %+v, want %+v", o.OffsetKey, got, o.Offset)
		}
	}

	before = etcdRev(t, cli)
	good := OffsetKV{OffsetKey{"billing", "orders", "idc-a", 0}, Offset{Offset: 1}}
	for _, tc := range []struct {
		name string
		o    OffsetKV
		want error
	}{
		{"unknown group", OffsetKV{OffsetKey{"nobody", "orders", "idc-a", 0}, Offset{}}, ErrNotFound},
		{"unknown topic", OffsetKV{OffsetKey{"billing", "nothing", "idc-a", 0}, Offset{}}, ErrNotFound},
		{"bad group", OffsetKV{OffsetKey{"a/b", "orders", "idc-a", 0}, Offset{}}, names.ErrInvalid},
		{"bad dc", OffsetKV{OffsetKey{"billing", "orders", "", 0}, Offset{}}, names.ErrInvalid},
		{"negative queue", OffsetKV{OffsetKey{"billing", "orders", "idc-a", -1}, Offset{}}, ErrInvalid},
		{"queue too big", OffsetKV{OffsetKey{"billing", "orders", "idc-a", MaxQueues}, Offset{}}, ErrInvalid},
		{"negative offset", OffsetKV{OffsetKey{"billing", "orders", "idc-a", 0}, Offset{Offset: -1}}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A bad offset anywhere refuses the whole call.
			_, err := s.PutOffsets(ctx, []OffsetKV{good, tc.o})
			wantErr(t, err, tc.want)
		})
	}
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused writes changed etcd: revision %d -> %d", before, after)
	}
	_, _, err = s.ListOffsets(ctx, "nobody")
	wantErr(t, err, ErrNotFound)
}

type controllerState struct {
	Version int    `json:"version"`
	Phase   string `json:"phase"`
}

func testJSON(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	rev := must(t)(s.PutJSON(ctx, KeyControllerState, controllerState{1, "serving"}, 0))
	_, err := s.PutJSON(ctx, KeyControllerState, controllerState{1, "x"}, 0)
	wantErr(t, err, ErrExists)
	rev2 := must(t)(s.PutJSON(ctx, KeyControllerState, controllerState{1, "fencing"}, rev))
	_, err = s.PutJSON(ctx, KeyControllerState, controllerState{1, "y"}, rev)
	wantErr(t, err, ErrConflict)
	var st controllerState
	if grev, err := s.GetJSON(ctx, KeyControllerState, &st); err != nil || grev != rev2 || st.Phase != "fencing" {
		t.Fatalf("GetJSON = %+v at %d, %v", st, grev, err)
	}
	must(t)(s.PutJSON(ctx, KeyDrills+"d1", map[string]any{"version": 1, "score": 0.5}, AnyRevision))
	must(t)(s.PutJSON(ctx, KeyDrills+"d2", map[string]any{"version": 1}, AnyRevision))
	all, _, err := s.ListJSON(ctx, KeyDrills)
	if err != nil || len(all) != 2 || string(all["drills/d1"]) != `{"score":0.5,"version":1}` {
		t.Fatalf("ListJSON = %s, %v", fmt.Sprint(all), err)
	}
	_, err = s.DeleteJSON(ctx, KeyDrills+"d1", 1)
	wantErr(t, err, ErrConflict)
	must(t)(s.DeleteJSON(ctx, KeyDrills+"d1", AnyRevision))
	_, err = s.GetJSON(ctx, KeyDrills+"d1", &st)
	wantErr(t, err, ErrNotFound)

	before := etcdRev(t, cli)
	for _, key := range []string{"topics/x", "traffic", "controller/", "drills/../x", "drills/a b", "controller//x", "/controller/x"} {
		_, err := s.PutJSON(ctx, key, 1, AnyRevision)
		wantErr(t, err, ErrInvalid)
	}
	_, err = s.PutJSON(ctx, "drills/x", func() {}, AnyRevision)
	wantErr(t, err, ErrInvalid)
	if after := etcdRev(t, cli); after != before {
		t.Fatalf("refused writes changed etcd: revision %d -> %d", before, after)
	}
}

func testCorrupt(t *testing.T, cli *clientv3.Client) {
	s := newStore(t, cli)
	ctx := testCtx(t)
	for key, val := range map[string]string{
		"topics/garbage": "not json",
		"topics/newer":   `{"version":2,"name":"newer","queues":1}`,
		"topics/nover":   `{"name":"nover","queues":1}`,
	} {
		if _, err := cli.Put(ctx, s.Key(key), val); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.GetTopic(ctx, strings.TrimPrefix(key, "topics/"))
		wantErr(t, err, ErrCorrupt)
	}
	_, _, err := s.ListTopics(ctx)
	wantErr(t, err, ErrCorrupt)
}

func TestIsUnavailable(t *testing.T) {
	for _, err := range []error{context.DeadlineExceeded, fmt.Errorf("x: %w", context.DeadlineExceeded)} {
		if !isUnavailable(err) {
			t.Errorf("isUnavailable(%v) = false", err)
		}
	}
	if isUnavailable(context.Canceled) || isUnavailable(errors.New("x")) {
		t.Error("isUnavailable of a non-availability error")
	}
}
