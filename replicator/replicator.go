package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
)

// Source is the metadata the replicator follows (a loaded meta.Cache):
// the topics, their fencing records and each DC's placement of queues.
type Source interface {
	Topics() []meta.Topic
	Ordered(topic string) (meta.Ordered, int64, bool)
	Placement(dc string) []meta.Slot
	DCs() []meta.DC
	Groups() []meta.Group
	Subscribe() (<-chan struct{}, func())
}

// Dialer returns a client of the broker at an address
// (internal/brokerconn.Pool).
type Dialer interface {
	Client(addr string) (brokerpb.BrokerClient, error)
}

// Replicator follows, in its DC, every queue that another DC leads.
type Replicator struct {
	cfg  Config
	src  Source
	dial Dialer
	log  *slog.Logger
	m    *metrics

	offsetSynced atomic.Int64 // unix nanos of the last full offset sync

	mu      sync.Mutex
	workers map[queueRef]*worker
}

// queueRef names one followed queue: queue of topic in the leading DC,
// copied to queue of dst here (topic itself for an ordered topic, the
// mirror %MIRROR%<dc>%<topic> for an unordered one).
type queueRef struct {
	topic string
	dst   string
	queue uint32
	// slotted: the source is queue 0 of the leading DC's broker at slot
	// queue of its placement (a group's retry or dead-letter topic, one
	// per broker), copied into queue queue of dst.
	slotted bool
	// standby, for a copy inside this DC's replica set at slot (sets.go):
	// the standby broker the set's leader's queue is copied to, as the
	// same topic and queue.
	standby string
	slot    int
}

// place is the logical queue whose placement finds the ref's brokers.
func (r queueRef) place() uint32 {
	if r.standby != "" {
		return uint32(r.slot)
	}
	return r.queue
}

// srcQueue is the queue id read on the leading DC's broker.
func (r queueRef) srcQueue() uint32 {
	if r.slotted {
		return 0
	}
	return r.queue
}

type worker struct {
	leader string
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a replicator; Run starts it.
func New(cfg Config, src Source, dial Dialer, reg prometheus.Registerer, logger *slog.Logger) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Replicator{cfg: cfg, src: src, dial: dial, workers: map[queueRef]*worker{},
		log: logger.With("component", "replicator", "dc", cfg.DC)}
	r.m = newMetrics(reg, r)
	return r, nil
}

// Run replicates until ctx ends: it starts and stops queue workers as the
// metadata changes, and syncs consumer offsets. Workers look the brokers
// up in the watched metadata at every step.
func (r *Replicator) Run(ctx context.Context) error {
	ch, unsub := r.src.Subscribe()
	defer unsub()
	var wg sync.WaitGroup
	wg.Go(func() { r.syncOffsetsLoop(ctx) })
	defer wg.Wait()
	defer r.stopAll()
	for {
		r.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		}
	}
}

// brokerFor is the broker of dc that hosts logical queue q (meta.Place).
// While that broker is down the queue is not copied from or into dc: no
// other broker holds its records, and fetching them from one would read
// a shorter queue as a divergence and truncate the copy.
func (r *Replicator) brokerFor(dc string, q uint32) (meta.Alive, error) {
	slots := r.src.Placement(dc)
	if len(slots) == 0 {
		return meta.Alive{}, fmt.Errorf("no broker registered in %s", dc)
	}
	s := meta.Place(slots, int(q))
	if !s.Live {
		return meta.Alive{}, fmt.Errorf("queue %d: broker %s of %s is down", q, s.Name, dc)
	}
	return s.Alive, nil
}

// followed lists the queues this DC follows now, with their leading DC:
// every queue of an ordered topic led by another DC, and every other DC's
// queues of a replicated unordered topic (into their mirrors).
func (r *Replicator) followed() map[queueRef]string {
	want := map[queueRef]string{}
	for _, t := range r.src.Topics() {
		if t.Replication == meta.ReplicationNone {
			continue
		}
		if !t.Ordered {
			for _, d := range r.src.DCs() {
				if d.Name == r.cfg.DC {
					continue
				}
				for q := range uint32(t.Queues) {
					want[queueRef{topic: t.Name, dst: names.MirrorTopic(d.Name, t.Name), queue: q}] = d.Name
				}
			}
			continue
		}
		o, _, ok := r.src.Ordered(t.Name)
		if !ok || o.Primary == r.cfg.DC {
			continue
		}
		for q := range uint32(t.Queues) {
			want[queueRef{topic: t.Name, dst: t.Name, queue: q}] = o.Primary
		}
	}
	r.followGroupQueues(want)
	r.followSets(want)
	return want
}

// followGroupQueues adds the retry and dead-letter topics of the mirrored
// groups (meta.GroupQueuesMirrored) of every other DC: queue 0 of its
// broker i is copied into queue i of the mirror here, so that while that
// DC is down its redeliveries and dead letters are read here.
func (r *Replicator) followGroupQueues(want map[queueRef]string) {
	topics := map[string]meta.Topic{}
	for _, t := range r.src.Topics() {
		topics[t.Name] = t
	}
	lookup := func(n string) (meta.Topic, bool) { t, ok := topics[n]; return t, ok }
	for _, g := range r.src.Groups() {
		if !meta.GroupQueuesMirrored(g, lookup) {
			continue
		}
		for _, d := range r.src.DCs() {
			if d.Name == r.cfg.DC {
				continue
			}
			for _, topic := range []string{names.RetryTopic(g.Name), names.DLQTopic(g.Name)} {
				for i := range r.src.Placement(d.Name) {
					want[queueRef{topic: topic, dst: names.MirrorTopic(d.Name, topic), queue: uint32(i), slotted: true}] = d.Name
				}
			}
		}
	}
}

// reconcile starts a worker for every followed queue, restarts one whose
// leading DC changed and stops the rest.
func (r *Replicator) reconcile(ctx context.Context) {
	want := r.followed()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref, w := range r.workers {
		if leader, ok := want[ref]; !ok || leader != w.leader {
			w.cancel()
			<-w.done
			delete(r.workers, ref)
			if ref.standby != "" {
				r.m.standbyLag.DeleteLabelValues(ref.dst, fmt.Sprint(ref.queue), ref.standby)
				continue
			}
			r.m.lagMessages.DeleteLabelValues(ref.dst, fmt.Sprint(ref.queue))
			r.m.lagSeconds.DeleteLabelValues(ref.dst, fmt.Sprint(ref.queue))
			r.m.lagBytes.DeleteLabelValues(ref.dst, fmt.Sprint(ref.queue))
		}
	}
	for ref, leader := range want {
		if _, ok := r.workers[ref]; ok {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{leader: leader, cancel: cancel, done: make(chan struct{})}
		r.workers[ref] = w
		go func() {
			defer close(w.done)
			r.follow(wctx, ref, leader)
		}()
	}
	r.m.workers.Set(float64(len(r.workers)))
}

func (r *Replicator) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref, w := range r.workers {
		w.cancel()
		<-w.done
		delete(r.workers, ref)
	}
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
