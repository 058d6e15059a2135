package metasync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/dr/meta"
)

// setRole is this broker's part in its replica set, as the placement
// shows it: alone (the zero value), the leader in a term, or a standby.
type setRole struct {
	standby bool
	term    uint64
	inSync  []string // the leader's in-sync standbys, as broker.StandbyID
}

// roleOf finds the broker's slot in its DC's placement. A set of several
// brokers without a leader record yet has no leader: every member is a
// standby until one writes the record.
func roleOf(slots []meta.Slot, dc, self string) setRole {
	for _, s := range slots {
		isStandby := slices.ContainsFunc(s.Standbys, func(b meta.Standby) bool { return b.Name == self })
		switch {
		case s.Name == self && len(s.Standbys) == 0:
			return setRole{}
		case s.Name == self && s.Term > 0:
			r := setRole{term: s.Term}
			for _, b := range s.InSync {
				r.inSync = append(r.inSync, broker.StandbyID(dc, b))
			}
			return r
		case s.Name == self || isStandby:
			return setRole{standby: true, term: s.Term}
		}
	}
	return setRole{}
}

// order adds the role to a topic's order: a standby leads nothing; the
// leader stamps its term and, on topics it takes sends of (writes),
// waits for its in-sync standbys with the topic's floor.
func (r setRole) order(o broker.Order, writes bool, minInSync int) broker.Order {
	o.Standby, o.Term = r.standby, r.term
	if !r.standby && writes && r.term > 0 {
		o.SetFollowers, o.MinInSync = slices.Clone(r.inSync), minInSync
	}
	return o
}

// SetSource is what a SetKeeper reads: the metadata cache.
type SetSource interface {
	Placement(dc string) []meta.Slot
	ReplicaSet(dc, set string) (meta.ReplicaSet, int64, bool)
	Topics() []meta.Topic
	Ordered(topic string) (meta.Ordered, int64, bool)
	Subscribe() (<-chan struct{}, func())
}

// SetKeeper keeps a broker's replica set record (meta.ReplicaSet): the
// first member creates it; the leader removes from its in-sync list a
// standby that is down or lacks a record for longer than isr-timeout,
// and adds back one that holds every queue's end; a live in-sync standby
// promotes itself once the leader's liveness record is gone. etcd
// transactions decide every race (see the invariants at meta.ReplicaSet
// and in broker/replica_set.go).
type SetKeeper struct {
	store *meta.Store
	src   SetSource
	b     *broker.Broker
	log   *slog.Logger
	every time.Duration
}

// NewSetKeeper returns a keeper for b.
func NewSetKeeper(store *meta.Store, src SetSource, b *broker.Broker, logger *slog.Logger) *SetKeeper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &SetKeeper{store: store, src: src, b: b, every: max(b.Config().ISRTimeout/4, 50*time.Millisecond),
		log: logger.With("subsystem", "replica-set", "broker", b.Name())}
}

// Run keeps the record until ctx ends: on every metadata change and
// every quarter of isr-timeout.
func (k *SetKeeper) Run(ctx context.Context) error {
	ch, cancel := k.src.Subscribe()
	defer cancel()
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		if err := k.Once(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, meta.ErrConflict) {
			k.log.Warn("replica set record not kept", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-t.C:
		}
	}
}

// Once makes one pass.
func (k *SetKeeper) Once(ctx context.Context) error {
	dc, self := k.b.DC(), k.b.Name()
	var slot meta.Slot
	found := false
	for _, s := range k.src.Placement(dc) {
		if s.Name == self || slices.ContainsFunc(s.Standbys, func(b meta.Standby) bool { return b.Name == self }) {
			slot, found = s, true
			break
		}
	}
	if !found || len(slot.Standbys) == 0 {
		return nil // not registered yet, or alone in its set
	}
	rec, rev, ok := k.src.ReplicaSet(dc, slot.Set)
	switch {
	case !ok && slot.Name == self:
		r, _, err := k.store.CreateReplicaSet(ctx, dc, slot.Set, self)
		if err == nil {
			k.log.Info("replica set created", "set", r.Name, "leader", self, "term", r.Term)
		}
		return err
	case !ok:
		return nil // its first member creates it
	case rec.Leader == self:
		return k.keepInSync(ctx, slot, rec, rev)
	default:
		return k.maybePromote(ctx, slot, rec, rev)
	}
}

// keepInSync is the leader's pass over its standbys.
func (k *SetKeeper) keepInSync(ctx context.Context, slot meta.Slot, rec meta.ReplicaSet, rev int64) error {
	timeout := k.b.Config().ISRTimeout
	now := time.Now()
	var in []string
	var why []string
	for _, s := range slot.Standbys {
		caught, since := k.b.StandbyProgress(broker.StandbyID(rec.DC, s.Name))
		was := slices.Contains(rec.InSync, s.Name)
		switch {
		case was && !s.Live:
			why = append(why, s.Name+" left: its liveness record is gone")
		case was && !caught && now.Sub(since) > timeout:
			why = append(why, fmt.Sprintf("%s left: it has lacked a record stored at %s for more than isr-timeout %v", s.Name, since.UTC().Format(time.RFC3339Nano), timeout))
		case was:
			in = append(in, s.Name)
		case s.Live && caught:
			in = append(in, s.Name)
			why = append(why, s.Name+" rejoined: it holds every queue's end")
		}
	}
	if len(why) == 0 {
		return nil
	}
	reason := strings.Join(why, "; ")
	if _, err := k.store.SetReplicaSetInSync(ctx, rec, rev, in, reason); err != nil {
		return err
	}
	k.log.Info("replica set in-sync standbys changed", "set", rec.Name, "term", rec.Term, "in_sync", in, "reason", reason)
	return nil
}

// maybePromote promotes this standby when it is in sync and the leader's
// liveness record is gone. Standbys in sync hold every record the leader
// acknowledged; of several, the transaction picks the first to ask.
func (k *SetKeeper) maybePromote(ctx context.Context, slot meta.Slot, rec meta.ReplicaSet, rev int64) error {
	self := k.b.Name()
	if slot.Live || !slices.Contains(rec.InSync, self) {
		return nil
	}
	me := slices.IndexFunc(slot.Standbys, func(b meta.Standby) bool { return b.Name == self })
	if me < 0 || !slot.Standbys[me].Live {
		return nil
	}
	var bumps []meta.OrderedBump
	for _, t := range k.src.Topics() {
		if !t.Ordered {
			continue
		}
		if o, orev, ok := k.src.Ordered(t.Name); ok && o.Primary == rec.DC {
			bumps = append(bumps, meta.OrderedBump{Ordered: o, Rev: orev})
		}
	}
	r, _, err := k.store.PromoteReplicaSet(ctx, rec, rev, self, bumps)
	if err != nil {
		return err
	}
	k.b.CountPromotion()
	k.log.Warn("promoted to leader of the replica set: its leader lost its liveness lease",
		"set", r.Name, "old_leader", rec.Leader, "term", r.Term, "ordered_topics_fenced", len(bumps))
	return nil
}
