// Package metasync keeps a broker's topics equal to the global metadata:
// topics are defined once in etcd, and every broker in every DC creates,
// grows and removes its queues to match, without a restart.
//
// Invariants:
//   - Only a cache that has loaded the metadata drives changes, so a broker
//     never deletes a topic because it has not heard of it yet.
//   - A topic's queue count only grows (the broker refuses shrinking).
//   - An ordered topic's fencing record (meta.Ordered: epoch, primary,
//     blocked), its followers (the other DCs not down) and its replication
//     and sync policy are passed to the broker, which only ever raises the
//     epoch and leads the topic only where the record names its DC.
//   - Lease (lease.go): a broker connected to the metadata keeps its
//     liveness record alive/<dc>/<broker> under an etcd lease and takes
//     ordered writes only while a renewal sent less than the TTL ago
//     succeeded.
//   - System topics (names starting with "%": %RETRY%<group>,
//     %DLQ%<group>) that the metadata lists are reconciled like any other;
//     those it does not list are never deleted, because the broker creates
//     them itself on first need.
package metasync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
)

// Source is what the reconciler reads: a loaded, watching metadata cache.
type Source interface {
	Topics() []meta.Topic
	// Ordered returns the fencing record of an ordered topic (and its
	// revision), false when there is none.
	Ordered(topic string) (meta.Ordered, int64, bool)
	// DCs are the data centers; the DCs other than an ordered topic's
	// primary that are not down are its followers.
	DCs() []meta.DC
	// Groups are the consumer groups: an unordered group's retry and
	// dead-letter queues are mirrored (meta.GroupQueuesMirrored).
	Groups() []meta.Group
	// Placement is a DC's placement (meta.Place): a mirror of a DC's
	// retry queues has one queue per broker of it.
	Placement(dc string) []meta.Slot
	Subscribe() (<-chan struct{}, func())
}

// Reconciler applies the metadata's topics to one broker.
type Reconciler struct {
	b      *broker.Broker
	src    Source
	log    *slog.Logger
	resync time.Duration
	role   setRole // of the pass in progress
}

// New returns a reconciler; resync is the period of a full pass even
// without change notifications (repairs a failed pass).
func New(b *broker.Broker, src Source, logger *slog.Logger, resync time.Duration) *Reconciler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{b: b, src: src, log: logger.With("subsystem", "metasync", "broker", b.Name()), resync: resync}
}

// Run reconciles at once, then on every metadata change, until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	ch, cancel := r.src.Subscribe()
	defer cancel()
	t := time.NewTicker(r.resync)
	defer t.Stop()
	for {
		if err := r.Once(); err != nil {
			r.log.Warn("topic reconciliation incomplete", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-t.C:
		}
	}
}

// Once makes one pass: create missing topics, grow queue counts and limits,
// delete topics the metadata no longer has. It returns the joined errors
// of the changes that failed; the others are still applied.
func (r *Reconciler) Once() error {
	r.role = roleOf(r.src.Placement(r.b.DC()), r.b.DC(), r.b.Name())
	r.b.SetReplicaSetState(r.role.standby, r.role.term, len(r.role.inSync))
	want := map[string]meta.Topic{}
	for _, t := range r.src.Topics() {
		want[t.Name] = t
	}
	var errs []error
	for _, t := range want {
		errs = append(errs, r.apply(t))
	}
	mirroredGroups := map[string]bool{}
	for _, g := range r.src.Groups() {
		if meta.GroupQueuesMirrored(g, func(n string) (meta.Topic, bool) { t, ok := want[n]; return t, ok }) {
			mirroredGroups[g.Name] = true
			errs = append(errs, r.applyGroupQueues(g.Name))
		}
	}
	for _, local := range r.b.Topics() {
		if _, ok := want[local.Name]; !ok && !strings.HasPrefix(local.Name, "%") {
			r.log.Info("deleting topic removed from metadata", "topic", local.Name)
			errs = append(errs, r.b.DeleteTopic(local.Name))
		}
		if dc, topic, ok := names.ParseMirror(local.Name); ok && !r.mirrored(want, mirroredGroups, dc, topic) {
			r.log.Info("deleting mirror of a topic no longer replicated", "topic", local.Name)
			errs = append(errs, r.b.DeleteTopic(local.Name))
		}
	}
	return errors.Join(errs...)
}

// mirrored reports whether this broker should hold a mirror of dc's
// queues of topic: another DC's, of an unordered topic replicated or of a
// mirrored group's retry or dead-letter topic.
func (r *Reconciler) mirrored(want map[string]meta.Topic, groups map[string]bool, dc, topic string) bool {
	if dc == r.b.DC() {
		return false
	}
	if g, ok := names.GroupQueue(topic); ok {
		return groups[g]
	}
	t, ok := want[topic]
	return ok && !t.Ordered && t.Replication != meta.ReplicationNone
}

// applyGroupQueues creates a mirrored group's retry and dead-letter topics
// here (one queue: what this broker's pops retry or dead-letter), so the
// other DCs' replicators can copy them from the start, and the mirrors of
// the other DCs' ones: queue i holds the copy of the queue of that DC's
// broker i (meta.Place), written only by the replicator.
func (r *Reconciler) applyGroupQueues(group string) error {
	var errs []error
	for _, topic := range []string{names.RetryTopic(group), names.DLQTopic(group)} {
		errs = append(errs, r.applyConfig(meta.Topic{Name: topic, Queues: 1, MaxMessageBytes: r.b.Config().MaxMessageBytes}))
		if r.role.term > 0 || r.role.standby {
			errs = append(errs, r.b.SetTopicOrder(topic, 0, r.role.order(broker.Order{}, false, 0)))
		}
		for _, d := range r.src.DCs() {
			if d.Name == r.b.DC() {
				continue
			}
			m := meta.Topic{Name: names.MirrorTopic(d.Name, topic), Queues: max(len(r.src.Placement(d.Name)), 1), MaxMessageBytes: r.b.Config().MaxMessageBytes}
			if err := r.applyConfig(m); err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, r.b.SetTopicOrder(m.Name, 1, r.role.order(broker.Order{Primary: d.Name}, false, 0)))
		}
	}
	return errors.Join(errs...)
}

func (r *Reconciler) apply(t meta.Topic) error {
	if err := r.applyConfig(t); err != nil {
		return err
	}
	if !t.Ordered {
		return r.applyUnordered(t)
	}
	o, rev, ok := r.src.Ordered(t.Name)
	if !ok || o.Epoch == 0 {
		return nil
	}
	return r.b.SetTopicOrder(t.Name, r.role.epoch(t.Name, o.Epoch, rev), r.role.order(broker.Order{
		Primary: o.Primary, Blocked: o.Blocked, Replication: string(t.Replication), Followers: r.followers(o.Primary),
		SyncPolicy: string(t.SyncPolicy),
	}, o.Primary == r.b.DC(), t.MinInSyncReplicas))
}

// applyUnordered gives a replicated unordered topic its followers (every
// other DC not down: sync sends wait for them) and creates the mirrors of
// the other DCs' queues, which only the replicator writes.
func (r *Reconciler) applyUnordered(t meta.Topic) error {
	if t.Replication == meta.ReplicationNone {
		return nil
	}
	self := r.b.DC()
	err := r.b.SetTopicOrder(t.Name, 0, r.role.order(broker.Order{Replication: string(t.Replication), Followers: r.followers(self), SyncPolicy: string(t.SyncPolicy)}, true, t.MinInSyncReplicas))
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range r.src.DCs() {
		if d.Name == self {
			continue
		}
		m := t
		m.Name = names.MirrorTopic(d.Name, t.Name)
		if err := r.applyConfig(m); err != nil {
			errs = append(errs, err)
			continue
		}
		// Led by the source DC: clients cannot write it, replicas can.
		errs = append(errs, r.b.SetTopicOrder(m.Name, 1, r.role.order(broker.Order{Primary: d.Name}, false, 0)))
	}
	return errors.Join(errs...)
}

// followers are the DCs that follow a primary: every other DC not down.
func (r *Reconciler) followers(primary string) []string {
	var out []string
	for _, d := range r.src.DCs() {
		if d.Name != primary && d.State != meta.DCDown {
			out = append(out, d.Name)
		}
	}
	return out
}

func (r *Reconciler) applyConfig(t meta.Topic) error {
	limit := min(t.MaxMessageBytes, r.b.Config().MaxMessageBytes)
	local, err := r.b.Topic(t.Name)
	if errors.Is(err, broker.ErrUnknownTopic) {
		r.log.Info("creating topic from metadata", "topic", t.Name, "queues", t.Queues)
		_, err = r.b.CreateTopic(broker.TopicConfig{Name: t.Name, Queues: uint32(t.Queues), MaxMessageBytes: limit})
		return err
	}
	if err != nil {
		return err
	}
	if local.Queues >= uint32(t.Queues) && local.MaxMessageBytes == limit {
		return nil
	}
	local.Queues = max(local.Queues, uint32(t.Queues))
	local.MaxMessageBytes = limit
	r.log.Info("updating topic from metadata", "topic", t.Name, "queues", local.Queues, "max-message-bytes", limit)
	_, err = r.b.UpdateTopic(local)
	return err
}
