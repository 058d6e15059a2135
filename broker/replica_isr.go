package broker

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// The in-sync set of sync-replicated topics (see the invariants in
// replica.go). The broker whose DC is a topic's primary judges each
// follower DC of Order.Followers by how long it has lacked a record: the
// store time of the first record it has not acknowledged, on any queue of
// the topic here. That is the time since the follower last held
// everything this queue had, so a follower that long-polls an idle queue
// is in sync, and one that keeps up under load by a fetch round trip is
// too; a follower that stops, or falls ever further behind, leaves once
// that age passes isr-timeout. The age counts at the earliest from when
// this broker began waiting for the follower (it became the primary, the
// follower's DC came back, the broker restarted), so a follower gets
// isr-timeout to show up before it is dropped.
//
// A queue stops counting for a follower when the follower no longer
// follows it from this broker: it has not fetched the queue, and nothing
// was appended to it, for ten times isr-timeout, while it did fetch the
// topic's other queues here within isr-timeout. That is a queue whose
// placement moved to another broker of this DC (a broker joined or left)
// with records the follower never took from here; without the rule they
// would keep the follower out for good. A follower that fetches nothing
// here is judged on every queue.
//
// State lives only in memory: a restarted or newly leading broker starts
// with every follower in sync and lets the timeout decide.

// syncFollower is one follower DC's standing in a topic's in-sync set.
type syncFollower struct {
	tracked time.Time // when this broker began waiting for it
	out     bool
	since   time.Time // out: when it left
	reason  string    // out: why it left
}

// lagMark caches the store time of the first record a follower lacks.
type lagMark struct {
	ack  int64
	born time.Time
}

// endMark is a queue's end and when an evaluation first saw it.
type endMark struct {
	end  int64
	seen time.Time
}

// abandonFactor times isr-timeout is how long a follower that fetches
// other queues of a topic here must leave one alone, with nothing
// appended to it, before that queue stops counting for it.
const abandonFactor = 10

// syncSets holds the in-sync sets of the sync topics whose primary is this
// broker's DC. Lock order: evalMu, then Broker.mu or replProgress.mu, then
// mu; senders read the sets under appendMu (appendMu, then mu).
type syncSets struct {
	evalMu sync.Mutex                      // serialises evaluations; guards lag and ends
	lag    map[queueKey]map[string]lagMark // per queue and follower DC
	ends   map[queueKey]endMark

	mu     sync.Mutex
	topics map[string]map[string]*syncFollower // topic -> follower DC
}

func newSyncSets() *syncSets {
	return &syncSets{lag: map[queueKey]map[string]lagMark{}, ends: map[queueKey]endMark{}, topics: map[string]map[string]*syncFollower{}}
}

// inSync reports whether sends of topic wait for dc. A follower not
// judged yet is in sync.
func (s *syncSets) inSync(topic, dc string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.topics[topic][dc]
	return f == nil || !f.out
}

// firstOut returns the first of followers that is out of topic's in-sync
// set, false when none is.
func (s *syncSets) firstOut(topic string, followers []string) (string, syncFollower, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, dc := range followers {
		if f := s.topics[topic][dc]; f != nil && f.out {
			return dc, *f, true
		}
	}
	return "", syncFollower{}, false
}

// countOut is how many of followers are out of topic's in-sync set.
func (s *syncSets) countOut(topic string, followers []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, dc := range followers {
		if f := s.topics[topic][dc]; f != nil && f.out {
			n++
		}
	}
	return n
}

// drop forgets a topic that is no longer sync-replicated from here. The
// caller holds evalMu.
func (s *syncSets) drop(topic string) {
	for k := range s.lag {
		if k.topic == topic {
			delete(s.lag, k)
		}
	}
	for k := range s.ends {
		if k.topic == topic {
			delete(s.ends, k)
		}
	}
	s.mu.Lock()
	delete(s.topics, topic)
	s.mu.Unlock()
}

// judged are the topics that have an in-sync set.
func (s *syncSets) judged() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.topics))
}

// behind is how far one follower DC trails on its worst queue.
type behind struct {
	queue    uint32
	ack, end int64
	born     time.Time // store time of the record at ack
}

// syncChange is one follower DC leaving or re-entering an in-sync set.
type syncChange struct {
	dc      string
	leave   bool
	reason  string
	outFor  time.Duration // re-entry: how long it was out
	lagging time.Time     // leave: since when it lacked a record
}

// evalSyncSet judges the follower DCs of a topic at now and applies the
// changes: logged, counted, and senders and readers woken.
func (b *Broker) evalSyncSet(topic string, now time.Time) {
	s := b.isr
	s.evalMu.Lock()
	defer s.evalMu.Unlock()
	t, err := b.Topic(topic)
	if err != nil || !t.Order.syncReplicated() || !t.Order.primaryIs(b.cfg.DC) {
		s.drop(topic)
		return
	}
	worst, err := b.followerLags(t, now)
	if err != nil {
		return // the topic changed meanwhile: the next pass judges it
	}
	changes := s.apply(topic, t.Order.Followers, worst, now, b.cfg.ISRTimeout)
	for _, c := range changes {
		b.reportSyncChange(topic, t.Order, c)
	}
	if len(changes) > 0 {
		b.repl.changed()
		b.wake()
	}
}

// followerLags returns, per follower DC behind on some queue that counts
// for it, its worst queue: the one whose first record it lacks is oldest.
// The caller holds evalMu.
func (b *Broker) followerLags(t TopicConfig, now time.Time) (map[string]behind, error) {
	timeout := b.cfg.ISRTimeout
	fetched := make([]map[string]time.Time, t.Queues)
	alive := map[string]bool{} // fetched some queue of the topic within isr-timeout
	for qid := range t.Queues {
		fetched[qid] = b.repl.lastFetch(queueKey{t.Name, qid})
		for dc, at := range fetched[qid] {
			alive[dc] = alive[dc] || now.Sub(at) <= timeout
		}
	}
	worst := map[string]behind{}
	for qid := range t.Queues {
		k := queueKey{t.Name, qid}
		q, err := b.queueOf(t.Name, qid)
		if err != nil {
			return nil, err
		}
		end := q.MaxOffset()
		if m, ok := b.isr.ends[k]; !ok || m.end != end {
			b.isr.ends[k] = endMark{end: end, seen: now}
		}
		acked := b.repl.get(k)
		for _, dc := range t.Order.Followers {
			ack := acked[dc]
			if ack >= end || abandoned(now, fetched[qid][dc], b.isr.ends[k].seen, alive[dc], abandonFactor*timeout) {
				continue
			}
			w := behind{queue: qid, ack: ack, end: end, born: b.lagBorn(k, dc, ack, now)}
			if cur, ok := worst[dc]; !ok || w.born.Before(cur.born) {
				worst[dc] = w
			}
		}
	}
	return worst, nil
}

// apply updates a topic's set from the followers' worst lags and returns
// the changes. The caller holds evalMu.
func (s *syncSets) apply(topic string, followers []string, worst map[string]behind, now time.Time, timeout time.Duration) []syncChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.topics[topic]
	if set == nil {
		set = map[string]*syncFollower{}
		s.topics[topic] = set
	}
	for dc := range set {
		if !slices.Contains(followers, dc) {
			delete(set, dc) // marked down: no longer a follower
		}
	}
	var changes []syncChange
	for _, dc := range followers {
		f := set[dc]
		if f == nil {
			f = &syncFollower{tracked: now}
			set[dc] = f
		}
		w, lagging := worst[dc]
		var age time.Duration
		if lagging {
			age = now.Sub(later(w.born, f.tracked))
		}
		switch {
		case !f.out && lagging && age > timeout:
			f.out, f.since = true, now
			f.reason = fmt.Sprintf("it holds queue %d up to offset %d of %d, and the record at %d has waited %v (isr-timeout %v)",
				w.queue, w.ack, w.end, w.ack, age.Round(time.Millisecond), timeout)
			changes = append(changes, syncChange{dc: dc, leave: true, reason: f.reason, lagging: later(w.born, f.tracked)})
		case f.out && (!lagging || age <= timeout/4):
			changes = append(changes, syncChange{dc: dc, outFor: now.Sub(f.since)})
			f.out, f.since, f.reason = false, time.Time{}, ""
		}
	}
	return changes
}

// abandoned reports whether a follower no longer follows a queue from
// this broker: alive (it fetches the topic's other queues here), yet it
// last fetched this one (zero: never), and the queue's end last moved,
// more than after ago.
func abandoned(now, lastFetch, endMoved time.Time, alive bool, after time.Duration) bool {
	return alive && now.Sub(lastFetch) > after && now.Sub(endMoved) > after
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// lagBorn returns the store time of the record at offset ack of queue k,
// the first one follower dc lacks (cached while its ack stays). A record
// that cannot be read counts as stored long ago; one stamped in the
// future (another DC's clock) as stored now. The caller holds evalMu.
func (b *Broker) lagBorn(k queueKey, dc string, ack int64, now time.Time) time.Time {
	m := b.isr.lag[k]
	if m == nil {
		m = map[string]lagMark{}
		b.isr.lag[k] = m
	}
	if c, ok := m[dc]; ok && c.ack == ack {
		return c.born
	}
	born := time.Time{}
	if ts, err := b.storeTimeAt(k.topic, k.id, ack); err == nil {
		born = ts
	}
	if born.After(now) {
		born = now
	}
	m[dc] = lagMark{ack: ack, born: born}
	return born
}

// storeTimeAt is the store time of the record at offset off of a queue.
func (b *Broker) storeTimeAt(topic string, qid uint32, off int64) (time.Time, error) {
	q, err := b.queueOf(topic, qid)
	if err != nil {
		return time.Time{}, err
	}
	e, err := q.Get(off)
	if err != nil {
		return time.Time{}, b.mapQueueErr(err, topic, qid, off)
	}
	m, err := b.readEntry(e, topic, qid)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, m.StoreTime), nil
}

// reportSyncChange logs and counts one change of an in-sync set.
func (b *Broker) reportSyncChange(topic string, o Order, c syncChange) {
	if c.leave {
		b.metrics.isrChanges.WithLabelValues(topic, "leave").Inc()
		b.log.Warn("follower DC left the in-sync set", "topic", topic, "follower_dc", c.dc, "sync_policy", o.policy(),
			"lacking_since", c.lagging.UTC(), "reason", c.reason)
		return
	}
	b.metrics.isrChanges.WithLabelValues(topic, "rejoin").Inc()
	b.log.Info("follower DC rejoined the in-sync set", "topic", topic, "follower_dc", c.dc, "sync_policy", o.policy(),
		"out_for", c.outFor.Round(time.Millisecond))
}

// syncSetLoop judges every sync topic led from here each quarter of
// isr-timeout, so a follower leaves even while no send or fetch comes.
func (b *Broker) syncSetLoop() {
	t := time.NewTicker(max(b.cfg.ISRTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-b.closed:
			return
		case now := <-t.C:
			b.evalSyncSets(now)
		}
	}
}

// evalSyncSets judges every topic that is or was sync-replicated from here.
func (b *Broker) evalSyncSets(now time.Time) {
	topics := b.isr.judged()
	for _, t := range b.Topics() {
		if t.Order.syncReplicated() && t.Order.primaryIs(b.cfg.DC) && !slices.Contains(topics, t.Name) {
			topics = append(topics, t.Name)
		}
	}
	for _, topic := range topics {
		b.evalSyncSet(topic, now)
	}
}

// outOfSyncError is the refusal of a send under sync policy fail while
// follower dc is out of the in-sync set; stored says whether the messages
// were appended here first.
func (b *Broker) outOfSyncError(topic, dc string, f syncFollower, stored bool) error {
	what := "nothing was stored; retry once it is back in sync"
	if stored {
		what = "the messages are stored on the leader and a retry of the same ids does not store them twice"
	}
	return fmt.Errorf("%w: topic %q: follower DC %s is out of the in-sync set since %s (%s); sync-policy fail refuses sends until it catches up: %s",
		ErrReplicaTimeout, topic, dc, f.since.UTC().Format(time.RFC3339Nano), f.reason, what)
}

// refuseOutOfSync fails a send of a fail-policy sync topic at once while
// one of its follower DCs is out of the in-sync set.
func (b *Broker) refuseOutOfSync(t TopicConfig, stored bool) error {
	if !t.Order.syncReplicated() || t.Order.degrades() {
		return nil
	}
	dc, f, out := b.isr.firstOut(t.Name, t.Order.Followers)
	if !out {
		return nil
	}
	b.metrics.replicaTimeouts.Inc()
	return b.outOfSyncError(t.Name, dc, f, stored)
}
