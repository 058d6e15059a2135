package meta

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cache is a local, watched copy of the routing metadata: DCs, topics,
// groups, ordered records and traffic (not offsets, controller state or
// drills). Brokers, proxies and the controller read it without a round trip
// to etcd.
//
// It loads everything at one revision, then watches from the next revision
// with clientv3.WithRequireLeader, so a member cut off from the quorum
// cannot feed it stale data. When a watch breaks (no leader, compaction, a
// closed stream) it loads everything again and watches anew, retrying until
// etcd answers. Between a change and its arrival the cache is behind etcd;
// WaitRevision waits until it has caught up with a given revision. Changes
// of different kinds (say a topic and a group that subscribes to it) may
// arrive in either order.
type Cache struct {
	s      *Store
	log    *slog.Logger
	ranges [6]watchRange

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	done   chan struct{}

	// wctx is the context of the current watches; RequestProgress must be
	// called with it to reach their gRPC stream. wmu and mu are never held
	// together.
	wmu  sync.Mutex
	wctx context.Context

	mu         sync.RWMutex
	dcs        map[string]DC
	topics     map[string]Topic
	groups     map[string]Group
	ordered    map[string]versionedOrdered
	traffic    Traffic
	trafficRev int64
	alive      map[string]map[string]Alive  // dc -> broker -> liveness record
	members    map[string]map[string]Member // dc -> broker -> registration
	sets       map[string]map[string]versionedSet
	// placements memoises Placement per DC (proxies ask on every send
	// and receive); an alive/, members/ or sets/ change of a DC drops it.
	placements map[string][]Slot
	watchRev   [6]int64 // revision each watch has delivered everything up to
	rev        int64    // min(watchRev): the cache reflects etcd up to here
	revCh      chan struct{}
	subs       map[int]chan struct{}
	nextSub    int
	closed     bool
}

type versionedOrdered struct {
	Ordered
	rev int64
}

// versionedSet is a replica set record and its revision.
type versionedSet struct {
	ReplicaSet
	rev int64
}

// UnmarshalJSON decodes the record (its revision is set by the cache).
func (v *versionedSet) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &v.ReplicaSet) }

// watchRange is one watched key range [start, end).
type watchRange struct{ start, end string }

// NewCache loads the routing metadata (ctx bounds that first load) and
// keeps it current until Close.
func NewCache(ctx context.Context, s *Store) (*Cache, error) {
	c := newCache(s)
	rev, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	c.start(rev)
	return c, nil
}

func newCache(s *Store) *Cache {
	c := &Cache{
		s:          s,
		log:        s.log,
		revCh:      make(chan struct{}),
		subs:       make(map[int]chan struct{}),
		done:       make(chan struct{}),
		placements: make(map[string][]Slot),
	}
	p := s.k.prefix
	// Six ranges skip offsets/, controller/, consumers/, audit/ and
	// drills/: offsets change every second and no reader of the cache
	// needs them. The third range runs from ordered/ through topics/ to
	// the traffic key; the last three hold the brokers' liveness records,
	// their registrations and the replica sets' leader records.
	c.ranges = [6]watchRange{
		{p + dirDCs, prefixEnd(p + dirDCs)},
		{p + dirGroups, prefixEnd(p + dirGroups)},
		{p + dirOrdered, p + keyTraffic + "\x00"},
		{p + KeyAlive, prefixEnd(p + KeyAlive)},
		{p + KeyMembers, prefixEnd(p + KeyMembers)},
		{p + KeySets, prefixEnd(p + KeySets)},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// start watches from rev+1 in the background.
func (c *Cache) start(rev int64) { go c.run(rev) }

// Close stops the watches. Safe to call twice.
func (c *Cache) Close() {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.revCh)
		for id, ch := range c.subs {
			close(ch)
			delete(c.subs, id)
		}
	}
}

// Revision is the etcd revision the cache is known to reflect: every change
// up to it has been applied. It can lag etcd's revision while nothing the
// cache holds changes; WaitRevision brings it forward.
func (c *Cache) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// WaitRevision waits until the cache reflects every change up to rev, such
// as the revision a Store write returned.
func (c *Cache) WaitRevision(ctx context.Context, rev int64) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.RLock()
		cur, ch, closed := c.rev, c.revCh, c.closed
		c.mu.RUnlock()
		switch {
		case cur >= rev:
			return nil
		case closed:
			return ErrClosed
		}
		// Watches over quiet key ranges only advance on a progress report.
		c.requestProgress()
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return errorf(ErrUnavailable, "metadata cache at revision %d, waiting for %d: %w", cur, rev, ctx.Err())
		}
	}
}

func (c *Cache) requestProgress() {
	c.wmu.Lock()
	wctx := c.wctx
	c.wmu.Unlock()
	if wctx != nil && wctx.Err() == nil {
		// An error means the stream is gone; the watch loop re-lists.
		_ = c.s.cli.RequestProgress(wctx)
	}
}

// Subscribe returns a channel that receives a value after every change to
// the cache (coalesced: one pending notification at most), and a function
// that ends the subscription. The channel is closed when the cache closes.
func (c *Cache) Subscribe() (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{}, 1)
	if c.closed {
		close(ch)
		return ch, func() {}
	}
	id := c.nextSub
	c.nextSub++
	c.subs[id] = ch
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.subs[id]; ok {
			delete(c.subs, id)
			close(ch)
		}
	}
}

// notifyLocked wakes every subscriber; c.mu is held.
func (c *Cache) notifyLocked() {
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// advanceLocked recomputes the cache revision; c.mu is held.
func (c *Cache) advanceLocked() {
	rev := slices.Min(c.watchRev[:])
	if rev > c.rev {
		c.rev = rev
		close(c.revCh)
		c.revCh = make(chan struct{})
	}
}

// Topics returns every topic, sorted by name.
func (c *Cache) Topics() []Topic {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return sortedValues(c.topics, func(t Topic) Topic { return t })
}

// Topic returns one topic.
func (c *Cache) Topic(name string) (Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[name]
	return t, ok
}

// Groups returns every group, sorted by name.
func (c *Cache) Groups() []Group {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return sortedValues(c.groups, Group.clone)
}

// Group returns one group.
func (c *Cache) Group(name string) (Group, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	g, ok := c.groups[name]
	return g.clone(), ok
}

// DCs returns every DC, sorted by name.
func (c *Cache) DCs() []DC {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return sortedValues(c.dcs, DC.clone)
}

// DC returns one DC.
func (c *Cache) DC(name string) (DC, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.dcs[name]
	return d.clone(), ok
}

// Ordered returns the fencing record of an ordered topic and its revision
// (for CASOrdered).
func (c *Cache) Ordered(topic string) (Ordered, int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.ordered[topic]
	return o.Ordered, o.rev, ok
}

// Traffic returns the traffic record and its revision (0: none written).
func (c *Cache) Traffic() (Traffic, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.traffic.clone(), c.trafficRev
}

func sortedValues[T any](m map[string]T, clone func(T) T) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, clone(m[k]))
	}
	return out
}

// applyLocked applies one key-value (nil value: deleted) at its revision;
// c.mu is held. Values that do not decode are logged and treated as absent.
func (c *Cache) applyLocked(kv *mvccpb.KeyValue, deleted bool) {
	key := string(kv.Key)
	if rest, ok := strings.CutPrefix(key, c.s.k.abs(KeyAlive)); ok {
		applyPerDC(c, c.alive, key, rest, kv.Value, deleted)
		return
	}
	if rest, ok := strings.CutPrefix(key, c.s.k.abs(KeyMembers)); ok {
		applyPerDC(c, c.members, key, rest, kv.Value, deleted)
		return
	}
	if rest, ok := strings.CutPrefix(key, c.s.k.abs(KeySets)); ok {
		applyPerDC(c, c.sets, key, rest, kv.Value, deleted)
		if dc, name, ok := strings.Cut(rest, "/"); ok && c.sets[dc] != nil {
			if v, ok := c.sets[dc][name]; ok {
				v.rev = kv.ModRevision
				c.sets[dc][name] = v
			}
		}
		return
	}
	dir, name, ok := c.s.k.parse(key)
	if !ok {
		return
	}
	switch dir {
	case dirDCs:
		applyValue(c, c.dcs, key, name, kv.Value, deleted)
	case dirTopics:
		applyValue(c, c.topics, key, name, kv.Value, deleted)
	case dirGroups:
		applyValue(c, c.groups, key, name, kv.Value, deleted)
	case dirOrdered:
		var o Ordered
		if deleted || !c.decodeOK(key, kv.Value, &o) {
			delete(c.ordered, name)
			return
		}
		c.ordered[name] = versionedOrdered{Ordered: o, rev: kv.ModRevision}
	case keyTraffic:
		var t Traffic
		if deleted || !c.decodeOK(key, kv.Value, &t) {
			c.traffic, c.trafficRev = Traffic{}, 0
			return
		}
		c.traffic, c.trafficRev = t, kv.ModRevision
	}
}

// applyPerDC applies <prefix><dc>/<broker> (alive/ or members/) to m, a
// record per broker per DC; c.mu is held.
func applyPerDC[T any](c *Cache, m map[string]map[string]T, key, rest string, val []byte, deleted bool) {
	dc, name, ok := strings.Cut(rest, "/")
	if !ok {
		return
	}
	delete(c.placements, dc) // every per-DC map feeds the placement
	var v T
	if deleted || !c.decodeOK(key, val, &v) {
		delete(m[dc], name)
		return
	}
	if m[dc] == nil {
		m[dc] = map[string]T{}
	}
	m[dc][name] = v
}

// Placement returns dc's placement of replicated queues (see Place): a
// slot per replica set, sorted by set name, each with its leader's
// liveness record when it is live. Proxies, replicators and the
// controller share it. The slots are shared: callers must not modify
// them.
func (c *Cache) Placement(dc string) []Slot {
	c.mu.RLock()
	p, ok := c.placements[dc]
	c.mu.RUnlock()
	if ok {
		return p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.placements[dc]; ok {
		return p
	}
	p = placement(c.members[dc], c.alive[dc], c.setRecords(dc))
	c.placements[dc] = p
	return p
}

// setRecords returns dc's replica set records by set name; c.mu is held.
func (c *Cache) setRecords(dc string) map[string]ReplicaSet {
	out := make(map[string]ReplicaSet, len(c.sets[dc]))
	for name, v := range c.sets[dc] {
		out[name] = v.ReplicaSet
	}
	return out
}

// ReplicaSet returns the leader record of a replica set of dc and its
// revision, false when there is none (a set of one broker, or one whose
// members have not written it yet).
func (c *Cache) ReplicaSet(dc, set string) (ReplicaSet, int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.sets[dc][set]
	return v.ReplicaSet.clone(), v.rev, ok
}

// Members returns the registrations of dc's brokers, sorted by name.
func (c *Cache) Members(dc string) []Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return sortedValues(c.members[dc], func(m Member) Member { return m })
}

// Alive returns the liveness record of one broker, false when it is down.
func (c *Cache) Alive(dc, broker string) (Alive, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.alive[dc][broker]
	return a, ok
}

// Brokers returns the live brokers of dc (their liveness records),
// sorted by name.
func (c *Cache) Brokers(dc string) []Alive {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return sortedValues(c.alive[dc], func(a Alive) Alive { return a })
}

func applyValue[T any](c *Cache, m map[string]T, key, name string, val []byte, deleted bool) {
	var v T
	if deleted || !c.decodeOK(key, val, &v) {
		delete(m, name)
		return
	}
	m[name] = v
}

func (c *Cache) decodeOK(key string, val []byte, v any) bool {
	if err := decode(key, val, v); err != nil {
		c.log.Warn("metadata value ignored", "key", key, "err", err)
		return false
	}
	return true
}

// load reads every cached record at one revision and replaces the cache's
// contents with them.
func (c *Cache) load(ctx context.Context) (int64, error) {
	k := c.s.k
	resp, err := c.s.txn(ctx, "load metadata cache", nil, []clientv3.Op{
		clientv3.OpGet(k.dir(dirDCs), clientv3.WithPrefix()),
		clientv3.OpGet(k.dir(dirTopics), clientv3.WithPrefix()),
		clientv3.OpGet(k.dir(dirGroups), clientv3.WithPrefix()),
		clientv3.OpGet(k.dir(dirOrdered), clientv3.WithPrefix()),
		clientv3.OpGet(k.traffic()),
		clientv3.OpGet(k.abs(KeyAlive), clientv3.WithPrefix()),
		clientv3.OpGet(k.abs(KeyMembers), clientv3.WithPrefix()),
		clientv3.OpGet(k.abs(KeySets), clientv3.WithPrefix()),
	}, nil)
	if err != nil {
		return 0, err
	}
	rev := resp.Header.Revision
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dcs = make(map[string]DC)
	c.topics = make(map[string]Topic)
	c.groups = make(map[string]Group)
	c.ordered = make(map[string]versionedOrdered)
	c.traffic, c.trafficRev = Traffic{}, 0
	c.alive = make(map[string]map[string]Alive)
	c.members = make(map[string]map[string]Member)
	c.sets = make(map[string]map[string]versionedSet)
	c.placements = make(map[string][]Slot)
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			c.applyLocked(kv, false)
		}
	}
	for i := range c.watchRev {
		c.watchRev[i] = rev
	}
	if rev > c.rev {
		c.rev = rev
		close(c.revCh)
		c.revCh = make(chan struct{})
	}
	c.notifyLocked()
	return rev, nil
}
