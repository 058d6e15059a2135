package metasync

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// source is an in-memory metadata source: the reconciliation logic is
// under test here; the real etcd path is covered by devcluster's test.
type source struct {
	mu      sync.Mutex
	groups  []meta.Group
	slots   map[string][]meta.Slot
	topics  []meta.Topic
	ordered map[string]meta.Ordered
	subs    []chan struct{}
}

func (s *source) Ordered(topic string) (meta.Ordered, int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.ordered[topic]
	return o, 1, ok
}

func (s *source) setOrdered(o meta.Ordered) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ordered == nil {
		s.ordered = map[string]meta.Ordered{}
	}
	s.ordered[o.Topic] = o
}

func (s *source) DCs() []meta.DC {
	return []meta.DC{{Name: "idc-a", State: meta.DCActive}, {Name: "idc-b", State: meta.DCActive}, {Name: "idc-c", State: meta.DCDown}}
}

func (s *source) Groups() []meta.Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]meta.Group(nil), s.groups...)
}

func (s *source) Placement(dc string) []meta.Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slots[dc]
}

func (s *source) Topics() []meta.Topic {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]meta.Topic(nil), s.topics...)
}

func (s *source) Subscribe() (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.subs = append(s.subs, ch)
	return ch, func() {}
}

func (s *source) set(ts ...meta.Topic) {
	s.mu.Lock()
	s.topics = ts
	subs := s.subs
	s.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func newBroker(t *testing.T) *broker.Broker {
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SegmentBytes = 1 << 20
	cfg.MaxMessageBytes = 256 << 10
	cfg.QueueEntriesPerFile, cfg.IndexSlots, cfg.IndexEntriesPerFile = 64, 64, 256
	b, err := broker.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestOnceCreatesGrowsAndDeletes(t *testing.T) {
	b := newBroker(t)
	src := &source{}
	r := New(b, src, nil, time.Hour)
	src.set(meta.Topic{Name: "a", Queues: 2, MaxMessageBytes: 4 << 20}, meta.Topic{Name: "b", Queues: 1, MaxMessageBytes: 1024})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	ta, err := b.Topic("a")
	if err != nil || ta.Queues != 2 || ta.MaxMessageBytes != 256<<10 {
		t.Fatalf("topic a %+v %v (limit must be capped to the broker's)", ta, err)
	}
	if tb, _ := b.Topic("b"); tb.MaxMessageBytes != 1024 {
		t.Fatalf("topic b limit %d", tb.MaxMessageBytes)
	}
	src.set(meta.Topic{Name: "a", Queues: 5, MaxMessageBytes: 4 << 20})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	if ta, _ := b.Topic("a"); ta.Queues != 5 {
		t.Fatalf("queues not grown: %d", ta.Queues)
	}
	if _, err := b.Topic("b"); err == nil {
		t.Fatal("topic b not deleted")
	}
}

func TestRunFollowsNotifications(t *testing.T) {
	b := newBroker(t)
	src := &source{}
	r := New(b, src, nil, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		src.set(meta.Topic{Name: "late", Queues: 3})
		if tc, err := b.Topic("late"); err == nil && tc.Queues == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("topic from a notification never reached the broker")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOrderedEpochReachesBroker(t *testing.T) {
	b := newBroker(t)
	src := &source{}
	r := New(b, src, nil, time.Hour)
	src.setOrdered(meta.Ordered{Topic: "ord", Primary: "idc-a", Epoch: 3})
	src.set(meta.Topic{Name: "ord", Ordered: true, Queues: 2, Primary: "idc-a"}, meta.Topic{Name: "plain", Queues: 1})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	if tc, _ := b.Topic("ord"); tc.Epoch != 3 {
		t.Fatalf("epoch %d, want 3", tc.Epoch)
	}
	if tc, _ := b.Topic("plain"); tc.Epoch != 0 {
		t.Fatalf("unordered topic fenced: %d", tc.Epoch)
	}
	src.setOrdered(meta.Ordered{Topic: "ord", Primary: "idc-b", Epoch: 4})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	if tc, _ := b.Topic("ord"); tc.Epoch != 4 {
		t.Fatalf("epoch %d, want 4", tc.Epoch)
	}
	// An older record (a stale cache) never lowers the fence.
	src.setOrdered(meta.Ordered{Topic: "ord", Primary: "idc-a", Epoch: 2})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	if tc, _ := b.Topic("ord"); tc.Epoch != 4 {
		t.Fatalf("epoch lowered to %d", tc.Epoch)
	}
}

func TestSystemTopicsNotDeleted(t *testing.T) {
	b := newBroker(t)
	src := &source{}
	r := New(b, src, nil, time.Hour)
	src.set(meta.Topic{Name: "orders", Queues: 1})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	// A pop creates the group's retry topic on the broker only.
	if _, err := b.Pop(context.Background(), broker.PopRequest{Group: "billing", Topic: "orders", QueueID: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Topic("%RETRY%billing"); err != nil {
		t.Fatalf("retry topic not created: %v", err)
	}
	src.set()
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Topic("%RETRY%billing"); err != nil {
		t.Fatalf("system topic deleted: %v", err)
	}
	if _, err := b.Topic("orders"); err == nil {
		t.Fatal("user topic removed from the metadata was kept")
	}
}

func TestReplicationAndSyncPolicyReachBroker(t *testing.T) {
	b := newBroker(t)
	src := &source{}
	r := New(b, src, nil, time.Hour)
	src.setOrdered(meta.Ordered{Topic: "ord", Primary: "idc-a", Epoch: 1})
	src.set(meta.Topic{Name: "ord", Ordered: true, Queues: 1, Primary: "idc-a", Replication: meta.ReplicationSync, SyncPolicy: meta.SyncPolicyDegrade},
		meta.Topic{Name: "plain", Queues: 1, Replication: meta.ReplicationSync, SyncPolicy: meta.SyncPolicyFail})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	want := map[string]broker.Order{
		"ord":   {Primary: "idc-a", Replication: "sync", Followers: []string{"idc-b"}, SyncPolicy: broker.SyncPolicyDegrade},
		"plain": {Replication: "sync", Followers: []string{"idc-b"}, SyncPolicy: broker.SyncPolicyFail},
	}
	for name, o := range want {
		tc, err := b.Topic(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.Order; got.Primary != o.Primary || got.Replication != o.Replication || got.SyncPolicy != o.SyncPolicy ||
			len(got.Followers) != 1 || got.Followers[0] != "idc-b" {
			t.Errorf("topic %s: order %+v, want %+v", name, got, o)
		}
	}
	// A policy change alone reaches the broker too.
	src.set(meta.Topic{Name: "ord", Ordered: true, Queues: 1, Primary: "idc-a", Replication: meta.ReplicationSync, SyncPolicy: meta.SyncPolicyFail})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	if tc, _ := b.Topic("ord"); tc.Order.SyncPolicy != broker.SyncPolicyFail {
		t.Fatalf("sync policy %q after the change, want fail", tc.Order.SyncPolicy)
	}
}

// An unordered group subscribing to a replicated topic gets its retry and
// dead-letter topics here and, per other DC, mirrors of them with one
// queue per broker of that DC; an ordered group gets none; mirrors of a
// group that is gone are deleted, its own retry topic is kept.
func TestGroupQueuesMirrored(t *testing.T) {
	b := newBroker(t)
	src := &source{slots: map[string][]meta.Slot{"idc-b": {{Name: "b0"}, {Name: "b1"}, {Name: "b2"}}}}
	r := New(b, src, nil, time.Hour)
	src.groups = []meta.Group{
		{Name: "stats", Subscriptions: []meta.Subscription{{Topic: "clicks"}}},
		{Name: "billing", Subscriptions: []meta.Subscription{{Topic: "clicks"}}, Ordered: true},
	}
	src.set(meta.Topic{Name: "clicks", Queues: 2, Replication: meta.ReplicationAsync})
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	self := b.DC()
	for _, dc := range []string{"idc-a", "idc-b", "idc-c"} {
		if dc == self {
			continue
		}
		want := uint32(max(len(src.slots[dc]), 1))
		for _, topic := range []string{"%RETRY%stats", "%DLQ%stats"} {
			m, err := b.Topic(names.MirrorTopic(dc, topic))
			if err != nil || m.Queues != want || m.Order.Primary != dc {
				t.Fatalf("mirror of %s of %s: %+v, %v (want %d queues led by %s)", topic, dc, m, err, want, dc)
			}
		}
		if _, err := b.Topic(names.MirrorTopic(dc, "%RETRY%billing")); err == nil {
			t.Fatal("an ordered group's retry topic is mirrored")
		}
	}
	for _, topic := range []string{"%RETRY%stats", "%DLQ%stats"} {
		if _, err := b.Topic(topic); err != nil {
			t.Fatalf("%s not created: %v", topic, err)
		}
	}
	src.mu.Lock()
	src.groups = nil
	src.mu.Unlock()
	if err := r.Once(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range b.Topics() {
		if _, of, ok := names.ParseMirror(tc.Name); ok && of != "clicks" {
			t.Fatalf("mirror %s kept after its group was deleted", tc.Name)
		}
	}
	if _, err := b.Topic("%RETRY%stats"); err != nil {
		t.Fatalf("own retry topic deleted: %v", err)
	}
}
