package broker

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duomq/duomq/internal/names"
)

// Replica sets inside a DC (the broker's side; package metasync keeps the
// set's leader record, meta.ReplicaSet, and the replicator copies the
// records). The brokers of a set hold the same queues: the leader takes
// sends and pops, and each standby copies every queue of the set's
// replicated topics from it at the same offsets, fetching as follower
// StandbyID(dc, name). metasync passes the set's state in each topic's
// Order: Standby on a standby; on the leader the term, SetWrites on the
// topics it takes sends of, and the in-sync standbys of the record
// (SetFollowers).
//
// Invariants:
//   - A standby leads nothing: it refuses sends (ErrNotLeader) and never
//     adopts an epoch from a send, and takes replica appends.
//   - The leader acknowledges a send only once every standby it waits for
//     holds it: those of SetFollowers and those the set keeper admits
//     (WaitForStandby). Its reads stop at the lowest offset they hold.
//   - A standby enters the record's in-sync list only after the leader
//     waits for it and it holds every record appended before that
//     (WaitForStandby's ends), and leaves the leader's waits only after
//     the record without it is written. So every acknowledged (and every
//     consumed) record is on every standby the record lists, the only
//     ones a promotion picks.
//   - The leader refuses a send, before storing it, while fewer copies
//     than the topic's MinInSync are in sync (itself, SetFollowers, and
//     for replication sync the follower DCs in the topic's in-sync set).
//   - Records of topics without a fencing epoch carry the set's term
//     (Order.stamp), so divergence after a promotion is found the same
//     way for every topic.

// setState is the broker's replica set role as metasync last applied it
// (for metrics) and the standbys the set keeper has the leader wait for.
type setState struct {
	standby atomic.Bool
	term    atomic.Uint64
	inSync  atomic.Int64

	mu    sync.Mutex
	waits map[string]bool // StandbyID -> waited for by sends
}

// SetReplicaSetState records the broker's role in its replica set (for
// metrics; the role that counts is in each topic's Order).
func (b *Broker) SetReplicaSetState(standby bool, term uint64, inSync int) {
	b.setState.standby.Store(standby)
	b.setState.term.Store(term)
	b.setState.inSync.Store(int64(inSync))
}

// CountPromotion counts this broker's promotion to lead its set.
func (b *Broker) CountPromotion() { b.metrics.promotions.Inc() }

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

// StandbyID names a standby broker as a follower: the identity it
// fetches with and the key of its acknowledgements.
func StandbyID(dc, broker string) string { return names.StandbyID(dc, broker) }

// QueueEnds are the next offsets of a broker's queues when they were read.
type QueueEnds map[queueKey]int64

// WaitForStandby makes sends of the topics this broker copies to its set
// wait for standby id from now on, and returns the ends of those queues
// read under appendMu after that took effect: a record acknowledged
// without waiting for id lies below them. Once id holds them
// (StandbyHolds), the record may list it as in sync.
func (b *Broker) WaitForStandby(id string) QueueEnds {
	b.setState.mu.Lock()
	if b.setState.waits == nil {
		b.setState.waits = map[string]bool{}
	}
	b.setState.waits[id] = true
	b.setState.mu.Unlock()
	b.repl.changed() // senders already waiting re-read whom to wait for
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	b.mu.RLock()
	defer b.mu.RUnlock()
	ends := QueueEnds{}
	for k, q := range b.queues {
		if t, ok := b.st.Topics[k.topic]; ok && copiedToSet(t.Order) {
			ends[k] = q.next
		}
	}
	return ends
}

// StopWaitingForStandby ends WaitForStandby: call it once the record no
// longer lists id, or when admitting it failed.
func (b *Broker) StopWaitingForStandby(id string) {
	b.setState.mu.Lock()
	delete(b.setState.waits, id)
	b.setState.mu.Unlock()
	b.repl.changed()
	b.wake()
}

// WaitsForStandby reports whether sends wait for standby id through
// WaitForStandby.
func (b *Broker) WaitsForStandby(id string) bool {
	b.setState.mu.Lock()
	defer b.setState.mu.Unlock()
	return b.setState.waits[id]
}

// StandbyHolds reports whether standby id holds every record below ends,
// and otherwise describes the first queue it lacks.
func (b *Broker) StandbyHolds(id string, ends QueueEnds) (bool, string) {
	for _, k := range slices.SortedFunc(maps.Keys(ends), func(a, c queueKey) int { return strings.Compare(a.String(), c.String()) }) {
		if ack := b.repl.get(k)[id]; ack < ends[k] {
			return false, fmt.Sprintf("queue %s holds up to %d of %d", k, ack, ends[k])
		}
	}
	return true, ""
}

// ForgetStandby drops what standby id acknowledged (it restarted, and may
// hold less than it fetched before), so its progress is measured anew.
func (b *Broker) ForgetStandby(id string) {
	b.repl.forget(id)
}

// copiedToSet reports whether this broker leads its set and copies the
// topic to its standbys.
func copiedToSet(o Order) bool { return o.Term > 0 && !o.Standby }

// eachWaiter calls fn with each standby a send of t waits for:
// SetFollowers and those being admitted. It allocates nothing, as reads
// ask on every pull; fn runs under setState.mu and must not take it.
func (b *Broker) eachWaiter(t TopicConfig, fn func(id string)) {
	if !t.Order.SetWrites {
		return
	}
	for _, id := range t.Order.SetFollowers {
		fn(id)
	}
	b.setState.mu.Lock()
	defer b.setState.mu.Unlock()
	for id := range b.setState.waits {
		if !slices.Contains(t.Order.SetFollowers, id) {
			fn(id)
		}
	}
}

func (b *Broker) standbyError(topic string) error {
	return fmt.Errorf("%w: broker %s is a standby of its replica set: it takes no sends of topic %q, the set's leader does", ErrNotLeader, b.cfg.Name, topic)
}

// inSyncCopies counts the copies of t in sync: this leader, the standbys
// of SetFollowers and, for replication sync, the follower DCs in the
// topic's in-sync set.
func (b *Broker) inSyncCopies(t TopicConfig) int {
	n := 1 + len(t.Order.SetFollowers)
	if t.Order.syncReplicated() {
		for _, dc := range t.Order.Followers {
			if b.isr.inSync(t.Name, dc) {
				n++
			}
		}
	}
	return n
}

// inSyncNames names the copies inSyncCopies counts, for errors.
func (b *Broker) inSyncNames(t TopicConfig) string {
	copies := append([]string{"this leader"}, t.Order.SetFollowers...)
	if t.Order.syncReplicated() {
		for _, dc := range t.Order.Followers {
			if b.isr.inSync(t.Name, dc) {
				copies = append(copies, "follower DC "+dc)
			}
		}
	}
	return strings.Join(copies, ", ")
}

// belowMinInSync is the refusal of a send of t while fewer copies than
// its floor are in sync (nil otherwise); stored says whether the messages
// were appended here first.
func (b *Broker) belowMinInSync(t TopicConfig, stored bool) error {
	need := max(t.Order.MinInSync, 1)
	if need == 1 || t.Order.Standby {
		return nil
	}
	have := b.inSyncCopies(t)
	if have >= need {
		return nil
	}
	what := "nothing was stored; retry once a copy has caught up"
	if stored {
		what = "the messages are stored on the leader and a retry of the same ids does not store them twice"
	}
	b.metrics.replicaTimeouts.Inc()
	return fmt.Errorf("%w: topic %q needs %d copies in sync (min-in-sync-replicas) and %d are (%s): %s",
		ErrReplicaTimeout, t.Name, need, have, b.inSyncNames(t), what)
}

// setMissing describes the standbys a send waits for that are still
// behind upTo ("" when none is), or fails when the topic has fewer
// copies in sync than its floor.
func (b *Broker) setMissing(t TopicConfig, upTo map[uint32]int64) (string, error) {
	if err := b.belowMinInSync(t, true); err != nil {
		return "", err
	}
	if !t.Order.SetWrites {
		return "", nil
	}
	var behind []string
	for qid, want := range upTo {
		acked := b.repl.get(queueKey{t.Name, qid})
		b.eachWaiter(t, func(id string) {
			if acked[id] < want {
				behind = append(behind, fmt.Sprintf("standby %s holds queue %d up to offset %d, not %d", id, qid, acked[id], want))
			}
		})
	}
	sort.Strings(behind)
	return strings.Join(behind, "; "), nil
}

// setReadCap is the lowest offset of queue qid that the standbys sends
// wait for hold (no cap without any, or on a standby).
func (b *Broker) setReadCap(t TopicConfig, qid uint32, limit int64) int64 {
	if !t.Order.SetWrites {
		return limit
	}
	acked := b.repl.get(queueKey{t.Name, qid})
	b.eachWaiter(t, func(id string) { limit = min(limit, acked[id]) })
	return limit
}

// StandbyProgress reports how a standby (StandbyID) stands on every queue
// of the topics this broker copies to its set: whether it holds each
// queue's end, and otherwise the store time of the oldest record it lacks
// (long ago when that record cannot be read).
func (b *Broker) StandbyProgress(id string) (caughtUp bool, lackingSince time.Time) {
	caughtUp = true
	for _, t := range b.Topics() {
		if !copiedToSet(t.Order) {
			continue
		}
		for qid := range t.Queues {
			q, err := b.queueOf(t.Name, qid)
			if err != nil {
				continue // deleted meanwhile
			}
			ack := b.repl.get(queueKey{t.Name, qid})[id]
			if ack >= q.MaxOffset() {
				continue
			}
			born, err := b.storeTimeAt(t.Name, qid, max(ack, q.MinOffset()))
			if err != nil {
				born = time.Time{}
			}
			if caughtUp || born.Before(lackingSince) {
				lackingSince = born
			}
			caughtUp = false
		}
	}
	return caughtUp, lackingSince
}
