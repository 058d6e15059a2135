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
	slot    meta.Slot
}

// epoch is the epoch to apply to an ordered topic whose record shows
// epoch at rev: on a leader, the one its promotion raised the topic to
// while the record seen is still the one the promotion replaced (the
// set's and the topic's keys reach the cache apart).
func (r setRole) epoch(topic string, epoch uint64, rev int64) uint64 {
	if r.standby {
		return epoch
	}
	return r.slot.EpochFor(topic, epoch, rev)
}

// roleOf finds the broker's slot in its DC's placement. A named replica
// set without a leader record yet has no leader: every member is a
// standby until one writes the record.
func roleOf(slots []meta.Slot, dc, self string) setRole {
	for _, s := range slots {
		isStandby := slices.ContainsFunc(s.Standbys, func(b meta.Standby) bool { return b.Name == self })
		switch {
		case s.Name == self && !s.Named:
			return setRole{}
		case s.Name == self && s.Term > 0:
			r := setRole{term: s.Term, slot: s}
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
// waits for its in-sync standbys; the topic's floor of in-sync copies
// applies wherever sends are taken.
func (r setRole) order(o broker.Order, writes bool, minInSync int) broker.Order {
	o.Standby, o.Term = r.standby, r.term
	if r.standby || !writes {
		return o
	}
	o.MinInSync = minInSync
	if r.term > 0 {
		o.SetWrites, o.SetFollowers = true, slices.Clone(r.inSync)
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
// first member creates it; the leader admits a standby to its in-sync
// list and removes one that is down, restarted or lacks a record for
// longer than isr-timeout; a live in-sync standby promotes itself once
// the leader's liveness record is gone. etcd transactions decide every
// race (see the invariants at meta.ReplicaSet and in
// broker/replica_set.go).
//
// Admission keeps an acknowledged record from missing on a standby the
// record lists: the leader first waits for the standby on every send
// (broker.WaitForStandby), then lists it once it holds every record
// appended before that; removal is the other way round, the record first.
type SetKeeper struct {
	store *meta.Store
	src   SetSource
	b     *broker.Broker
	log   *slog.Logger
	every time.Duration

	// Only Run's goroutine uses these.
	admitting map[string]admission // standby -> admission in progress
	started   map[string]time.Time // standby -> its process start last seen
}

// admission is a standby the leader waits for and will list once it
// holds ends.
type admission struct {
	ends  broker.QueueEnds
	since time.Time
}

// NewSetKeeper returns a keeper for b.
func NewSetKeeper(store *meta.Store, src SetSource, b *broker.Broker, logger *slog.Logger) *SetKeeper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &SetKeeper{store: store, src: src, b: b, every: max(b.Config().ISRTimeout/4, 50*time.Millisecond),
		log:       logger.With("subsystem", "replica-set", "broker", b.Name()),
		admitting: map[string]admission{}, started: map[string]time.Time{}}
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

// Once makes one pass. It is not safe for concurrent use.
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
	if !found || !slot.Named {
		k.endAdmissions(nil)
		return nil // not registered yet, or in no named set
	}
	rec, rev, ok := k.src.ReplicaSet(dc, slot.Set)
	if !ok || rec.Leader != self {
		k.endAdmissions(nil)
	}
	switch {
	case !ok && slot.Name == self:
		r, _, err := k.store.CreateReplicaSet(ctx, dc, slot.Set, self)
		if err == nil {
			k.log.Info("replica set created", "set", r.Name, "leader", self, "term", r.Term)
		}
		return err
	case !ok:
		return nil // its first live member by name creates it
	case rec.Leader == self:
		return k.keepInSync(ctx, slot, rec, rev)
	default:
		return k.maybePromote(ctx, slot, rec, rev)
	}
}

// endAdmissions stops waiting for the standbys being admitted, except
// those of keep.
func (k *SetKeeper) endAdmissions(keep map[string]bool) {
	for name := range k.admitting {
		if !keep[name] {
			k.b.StopWaitingForStandby(broker.StandbyID(k.b.DC(), name))
			delete(k.admitting, name)
		}
	}
}

// change is the leader's verdict on its standbys in one pass.
type change struct {
	in     []string // the in-sync list to write
	why    []string
	joins  []string // admitted by this write
	leaves []string // removed by this write
}

// keepInSync is the leader's pass over its standbys.
func (k *SetKeeper) keepInSync(ctx context.Context, slot meta.Slot, rec meta.ReplicaSet, rev int64) error {
	var c change
	present := map[string]bool{}
	for _, s := range slot.Standbys {
		present[s.Name] = true
		k.judge(s, slices.Contains(rec.InSync, s.Name), &c)
	}
	k.endAdmissions(present)
	if len(c.why) == 0 {
		return nil
	}
	reason := strings.Join(c.why, "; ")
	if _, err := k.store.SetReplicaSetInSync(ctx, rec, rev, c.in, reason); err != nil {
		for _, name := range c.joins { // not listed: stop waiting, admit again later
			k.b.StopWaitingForStandby(broker.StandbyID(rec.DC, name))
			delete(k.admitting, name)
		}
		return err
	}
	for _, name := range c.joins {
		delete(k.admitting, name) // listed now: sends go on waiting for it
	}
	for _, name := range c.leaves {
		id := broker.StandbyID(rec.DC, name)
		k.b.StopWaitingForStandby(id)
		if s := standbyOf(slot, name); s.Live && !s.Alive.Started.Equal(k.started[name]) {
			k.b.ForgetStandby(id) // restarted: it may hold less than it fetched
			k.started[name] = s.Alive.Started
		}
	}
	k.log.Info("replica set in-sync standbys changed", "set", rec.Name, "term", rec.Term, "in_sync", c.in, "reason", reason)
	return nil
}

func standbyOf(slot meta.Slot, name string) meta.Standby {
	for _, s := range slot.Standbys {
		if s.Name == name {
			return s
		}
	}
	return meta.Standby{}
}

// judge decides whether standby s stays in, leaves or enters the in-sync
// list (was: listed now).
func (k *SetKeeper) judge(s meta.Standby, was bool, c *change) {
	timeout := k.b.Config().ISRTimeout
	now := time.Now()
	id := broker.StandbyID(k.b.DC(), s.Name)
	seen, known := k.started[s.Name]
	restarted := s.Live && known && !s.Alive.Started.Equal(seen)
	if s.Live && !known {
		k.started[s.Name] = s.Alive.Started
	}
	leave := func(why string) {
		c.why, c.leaves = append(c.why, s.Name+" left: "+why), append(c.leaves, s.Name)
	}
	if was {
		caught, since := k.b.StandbyProgress(id)
		switch {
		case !s.Live:
			leave("its liveness record is gone")
		case restarted:
			leave("it restarted at " + s.Alive.Started.UTC().Format(time.RFC3339Nano) + " and rejoins once it holds every queue's end again")
		case !caught && now.Sub(since) > timeout:
			leave(fmt.Sprintf("it has lacked a record stored at %s for more than isr-timeout %v", since.UTC().Format(time.RFC3339Nano), timeout))
		default:
			c.in = append(c.in, s.Name)
		}
		return
	}
	if restarted {
		k.b.ForgetStandby(id)
		k.started[s.Name] = s.Alive.Started
	}
	if !s.Live {
		if _, ok := k.admitting[s.Name]; ok { // sends would wait for it in vain
			k.b.StopWaitingForStandby(id)
			delete(k.admitting, s.Name)
		}
		return
	}
	if restarted {
		return // its acknowledgements were forgotten: judged again next pass
	}
	a, ok := k.admitting[s.Name]
	if !ok {
		// Wait for it only once it is close: every send waits meanwhile.
		if caught, since := k.b.StandbyProgress(id); !caught && now.Sub(since) > timeout/4 {
			return
		}
		a = admission{ends: k.b.WaitForStandby(id), since: now}
		k.admitting[s.Name] = a
	}
	if holds, lacks := k.b.StandbyHolds(id, a.ends); !holds {
		if now.Sub(a.since) > timeout {
			k.log.Info("replica set standby not admitted: it did not catch up within isr-timeout", "standby", s.Name, "lacks", lacks, "isr_timeout", timeout)
			k.b.StopWaitingForStandby(id)
			delete(k.admitting, s.Name)
		}
		return
	}
	c.in, c.joins = append(c.in, s.Name), append(c.joins, s.Name)
	c.why = append(c.why, s.Name+" rejoined: it holds every record appended before the leader began waiting for it")
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
