package controller

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/duomq/duomq/dr/meta"
)

// Status is the controller's view of the whole deployment.
type Status struct {
	// Controller is the candidate that answered.
	Controller string `json:"controller"`
	// Leader is the elected leader (nil when none).
	Leader *LeaderInfo `json:"leader"`
	DCs    []DCStatus  `json:"dcs"`
	// Etcd is each metadata member's reachability from this candidate.
	Etcd    []EtcdMember    `json:"etcd"`
	Ordered []OrderedStatus `json:"ordered"`
	Traffic meta.Traffic    `json:"traffic"`
	// ConsumerLag is, per group, topic and DC, the messages after the
	// group's committed offsets.
	ConsumerLag []ConsumerLag `json:"consumer_lag"`
	// Transitions are those in progress.
	Transitions []Transition `json:"transitions"`
	// Errors are what could not be read (an unreachable broker): the
	// figures they feed are missing, not zero.
	Errors []string `json:"errors,omitempty"`
}

// DCStatus is one DC's state and liveness.
type DCStatus struct {
	Name  string       `json:"name"`
	State meta.DCState `json:"state"`
	DCHealth
	// Down is whether the controller counts it down (unhealthy for
	// down-after, or startup-grace for a DC it never saw healthy).
	Down bool `json:"down"`
	// ReplicaSets are the DC's placement slots, sorted by set name: each
	// replica set of brokers (a broker alone in its set is one too).
	ReplicaSets []ReplicaSetStatus `json:"replica_sets"`
}

// ReplicaSetStatus is one replica set of a DC as the placement shows it.
type ReplicaSetStatus struct {
	Set string `json:"set"`
	// Leader is the broker that leads the set's queues; LeaderLive is
	// whether it serves them (its liveness record is there and, in a set
	// of several brokers, the set's leader record names it).
	Leader     string `json:"leader"`
	LeaderLive bool   `json:"leader_live"`
	// Term is the set's leadership term; 0 for a broker alone in its set,
	// and for a set of several brokers without a leader record naming one
	// of them (not written yet, or naming a forgotten broker): then Leader
	// is only the member that would write it, and none serves.
	Term     uint64          `json:"term"`
	Standbys []StandbyStatus `json:"standbys"`
}

// StandbyStatus is a standby of a replica set.
type StandbyStatus struct {
	Name string `json:"name"`
	Live bool   `json:"live"`
	// InSync: the leader counts it as holding every record it acknowledged
	// (it waits for it on every send; only such a standby is promoted).
	InSync bool `json:"in_sync"`
}

// ReplicaSetsOf describes a DC's placement (meta.Slot per replica set).
func ReplicaSetsOf(slots []meta.Slot) []ReplicaSetStatus {
	out := make([]ReplicaSetStatus, 0, len(slots))
	for _, s := range slots {
		rs := ReplicaSetStatus{Set: s.Set, Leader: s.Name, LeaderLive: s.Live, Term: s.Term, Standbys: []StandbyStatus{}}
		for _, b := range s.Standbys {
			rs.Standbys = append(rs.Standbys, StandbyStatus{Name: b.Name, Live: b.Live, InSync: slices.Contains(s.InSync, b.Name)})
		}
		out = append(out, rs)
	}
	return out
}

// EtcdMember is one member of the metadata service.
type EtcdMember struct {
	Name      string `json:"name"`
	Endpoint  string `json:"endpoint"`
	Reachable bool   `json:"reachable"`
	Leader    bool   `json:"leader"`
	Error     string `json:"error,omitempty"`
}

// OrderedStatus is an ordered topic's routing and replication.
type OrderedStatus struct {
	Topic       string           `json:"topic"`
	Home        string           `json:"home"`
	Primary     string           `json:"primary"`
	Epoch       uint64           `json:"epoch"`
	Blocked     bool             `json:"blocked"`
	Replication meta.Replication `json:"replication"`
	Queues      int              `json:"queues"`
	// Lag is, per queue and follower DC, the messages the follower copy
	// lacks: the primary's next offset minus the follower's.
	Lag []QueueLag `json:"lag"`
	// OutOfSync are the follower DCs out of the topic's in-sync set on
	// some broker of the primary (replication sync): sends fail (policy
	// fail) or go on without them (degrade).
	OutOfSync []string `json:"out_of_sync"`
}

// QueueLag is a follower DC's replication lag of one queue.
type QueueLag struct {
	Queue    int    `json:"queue"`
	DC       string `json:"dc"`
	Messages int64  `json:"messages"`
}

// ConsumerLag is a group's unconsumed messages of a topic in a DC.
type ConsumerLag struct {
	Group    string `json:"group"`
	Topic    string `json:"topic"`
	DC       string `json:"dc"`
	Messages int64  `json:"messages"`
}

// Status gathers the metadata, liveness, replication lag and consumer lag.
// Any candidate answers it.
func (c *Controller) Status(ctx context.Context) (Status, error) {
	st := Status{Controller: c.cfg.ID, DCs: []DCStatus{}, Ordered: []OrderedStatus{}, ConsumerLag: []ConsumerLag{}, Transitions: []Transition{}}
	mctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	dcs, _, err := c.store.ListDCs(mctx)
	if err != nil {
		return st, err
	}
	topics, _, err := c.store.ListTopics(mctx)
	if err != nil {
		return st, err
	}
	if st.Traffic, _, err = c.store.GetTraffic(mctx); err != nil {
		return st, err
	}
	if li, ok, err := c.Leader(ctx); err == nil && ok {
		st.Leader = &li
	}
	if st.Transitions, err = c.inProgress(ctx); err != nil {
		st.Errors = append(st.Errors, "controller state: "+err.Error())
	}
	now := c.clock.Now()
	for _, d := range dcs {
		h := c.health.get(d.Name)
		st.DCs = append(st.DCs, DCStatus{Name: d.Name, State: d.State, DCHealth: h, Down: c.isDown(h, now),
			ReplicaSets: ReplicaSetsOf(c.placement(d.Name))})
	}
	st.Etcd = c.etcdMembers(ctx)
	g := &gatherer{c: c, ctx: ctx, states: map[[2]string]*replicaCall{}, sem: make(chan struct{}, maxStatusCalls)}
	for _, t := range topics {
		if !t.Ordered {
			continue
		}
		// Its own deadline: the etcd member probes above may have used
		// up mctx's when a site is down.
		octx, ocancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
		rec, _, err := c.store.GetOrdered(octx, t.Name)
		ocancel()
		if err != nil {
			st.Errors = append(st.Errors, err.Error())
			continue
		}
		st.Ordered = append(st.Ordered, g.ordered(t, rec, dcs))
	}
	st.ConsumerLag = g.consumerLag(topics, dcs)
	st.Errors = append(st.Errors, g.errs...)
	return st, nil
}

// inProgress lists the transitions in progress: the term's when leading,
// else controller/state's.
func (c *Controller) inProgress(ctx context.Context) ([]Transition, error) {
	var trs []Transition
	if t := c.currentTerm(); t != nil {
		trs = t.transitions()
	} else {
		var err error
		if trs, err = c.loadState(ctx); err != nil {
			return []Transition{}, err
		}
	}
	sort.Slice(trs, func(i, j int) bool { return trs[i].ID < trs[j].ID })
	if trs == nil {
		trs = []Transition{}
	}
	return trs, nil
}

// memberProbeTimeout bounds the status probe of one etcd member: a
// member that is down must not hold up the status (which operators read
// most when a site is lost) for a whole broker timeout.
const memberProbeTimeout = 500 * time.Millisecond

// etcdMembers asks each metadata member for its status.
func (c *Controller) etcdMembers(ctx context.Context) []EtcdMember {
	mctx, cancel := context.WithTimeout(ctx, min(c.cfg.BrokerTimeout, memberProbeTimeout))
	defer cancel()
	ml, err := c.cli.MemberList(mctx)
	if err != nil {
		return []EtcdMember{{Error: err.Error()}}
	}
	out := make([]EtcdMember, len(ml.Members))
	var wg sync.WaitGroup
	for i, m := range ml.Members {
		out[i] = EtcdMember{Name: m.Name}
		if len(m.ClientURLs) == 0 {
			out[i].Error = "no client URL"
			continue
		}
		out[i].Endpoint = m.ClientURLs[0]
		wg.Go(func() {
			resp, err := c.cli.Status(mctx, out[i].Endpoint)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Reachable = true
			out[i].Leader = resp.Leader == resp.Header.GetMemberId()
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// maxStatusCalls bounds the broker calls of one status in flight.
const maxStatusCalls = 32

// gatherer asks brokers for the status figures, each (broker, topic) once.
type gatherer struct {
	c      *Controller
	ctx    context.Context
	sem    chan struct{} // bounds the broker calls in flight
	mu     sync.Mutex
	states map[[2]string]*replicaCall
	errs   []string
}

type replicaCall struct {
	once sync.Once
	st   ReplicaState
	err  error
}

func (g *gatherer) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs = append(g.errs, err.Error())
}

// replicaState asks a broker once per status.
func (g *gatherer) replicaState(addr, topic string) (ReplicaState, error) {
	g.mu.Lock()
	call, ok := g.states[[2]string{addr, topic}]
	if !ok {
		call = &replicaCall{}
		g.states[[2]string{addr, topic}] = call
	}
	g.mu.Unlock()
	call.once.Do(func() {
		g.sem <- struct{}{}
		defer func() { <-g.sem }()
		ctx, cancel := context.WithTimeout(g.ctx, g.c.cfg.BrokerTimeout)
		defer cancel()
		call.st, call.err = g.c.brokers.ReplicaState(ctx, addr, topic)
		if call.err != nil {
			g.fail(call.err)
		}
	})
	return call.st, call.err
}

// nexts returns each queue's next offset in dc, read from the broker that
// holds it; ok[q] is false when that broker did not answer.
func (g *gatherer) nexts(topic, dc string, queues int) ([]int64, []bool) {
	next, ok := make([]int64, queues), make([]bool, queues)
	slots := g.c.placement(dc)
	if !meta.AnyLive(slots) {
		return next, ok
	}
	var wg sync.WaitGroup
	for q := range queues {
		if !meta.Place(slots, q).Live {
			continue
		}
		wg.Go(func() {
			st, err := g.replicaState(meta.Place(slots, q).Alive.Address, topic)
			if err == nil {
				next[q], ok[q] = nextOf(st.Queues, q), true
			}
		})
	}
	wg.Wait()
	return next, ok
}

// outOfSync is the union of the follower DCs that the live brokers of
// dc holding the topic's queues report out of its in-sync set.
func (g *gatherer) outOfSync(topic, dc string, queues int) []string {
	out := []string{}
	for i, s := range g.c.placement(dc) {
		if i >= queues || !s.Live {
			continue
		}
		st, err := g.replicaState(s.Alive.Address, topic)
		if err != nil {
			continue
		}
		for _, f := range st.OutOfSync {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out
}

// ordered builds an ordered topic's status with its replication lag.
func (g *gatherer) ordered(t meta.Topic, rec meta.Ordered, dcs []meta.DC) OrderedStatus {
	os := OrderedStatus{Topic: t.Name, Home: t.Primary, Primary: rec.Primary, Epoch: rec.Epoch, Blocked: rec.Blocked,
		Replication: t.Replication, Queues: t.Queues, Lag: []QueueLag{}}
	primary, pok := g.nexts(t.Name, rec.Primary, t.Queues)
	os.OutOfSync = g.outOfSync(t.Name, rec.Primary, t.Queues)
	for _, d := range dcs {
		if d.Name == rec.Primary || len(g.c.health.alive(d.Name)) == 0 {
			continue
		}
		follower, fok := g.nexts(t.Name, d.Name, t.Queues)
		for q := range t.Queues {
			if pok[q] && fok[q] {
				os.Lag = append(os.Lag, QueueLag{Queue: q, DC: d.Name, Messages: max(primary[q]-follower[q], 0)})
			}
		}
	}
	return os
}

// consumerLag sums, per group, topic and DC, each committed offset's
// distance to its queue's end on the same broker.
func (g *gatherer) consumerLag(topics []meta.Topic, dcs []meta.DC) []ConsumerLag {
	type key struct{ group, topic, dc string }
	var mu sync.Mutex
	sums := map[key]int64{}
	var wg sync.WaitGroup
	for _, t := range topics {
		for _, d := range dcs {
			for _, a := range g.c.health.alive(d.Name) {
				wg.Go(func() {
					lags := g.brokerLag(a, t.Name)
					mu.Lock()
					defer mu.Unlock()
					for grp, n := range lags {
						sums[key{grp, t.Name, d.Name}] += n
					}
				})
			}
		}
	}
	wg.Wait()
	out := make([]ConsumerLag, 0, len(sums))
	for k, n := range sums {
		out = append(out, ConsumerLag{Group: k.group, Topic: k.topic, DC: k.dc, Messages: n})
	}
	slices.SortFunc(out, func(a, b ConsumerLag) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.DC, b.DC))
	})
	return out
}

// brokerLag is one broker's consumer lag of a topic by group.
func (g *gatherer) brokerLag(a meta.Alive, topic string) map[string]int64 {
	g.sem <- struct{}{}
	defer func() { <-g.sem }()
	ctx, cancel := context.WithTimeout(g.ctx, g.c.cfg.BrokerTimeout)
	defer cancel()
	offs, err := g.c.brokers.ConsumerOffsets(ctx, a.Address, topic)
	if err != nil {
		g.fail(err)
		return nil
	}
	ends := map[int]int64{}
	out := map[string]int64{}
	for _, o := range offs {
		end, ok := ends[o.Queue]
		if !ok {
			_, qmax, err := g.c.brokers.QueueOffsets(ctx, a.Address, topic, o.Queue)
			if err != nil {
				g.fail(err)
				return nil
			}
			ends[o.Queue], end = qmax, qmax
		}
		out[o.Group] += max(end-o.Offset, 0)
	}
	return out
}
