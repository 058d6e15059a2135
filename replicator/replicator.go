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
// the topics, their fencing records and the live brokers of each DC.
type Source interface {
	Topics() []meta.Topic
	Ordered(topic string) (meta.Ordered, int64, bool)
	Brokers(dc string) []meta.Alive
	DCs() []meta.DC
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

// brokerFor is the broker of dc that hosts logical queue q.
func (r *Replicator) brokerFor(dc string, q uint32) (meta.Alive, error) {
	bs := r.src.Brokers(dc)
	if len(bs) == 0 {
		return meta.Alive{}, fmt.Errorf("no live broker in %s", dc)
	}
	return bs[int(q)%len(bs)], nil
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
					want[queueRef{t.Name, names.MirrorTopic(d.Name, t.Name), q}] = d.Name
				}
			}
			continue
		}
		o, _, ok := r.src.Ordered(t.Name)
		if !ok || o.Primary == r.cfg.DC {
			continue
		}
		for q := range uint32(t.Queues) {
			want[queueRef{t.Name, t.Name, q}] = o.Primary
		}
	}
	return want
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
