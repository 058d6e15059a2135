package broker

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/duomq/duomq/internal/names"
	"time"
)

// Replica sets inside a DC (the broker's side; package metasync keeps the
// set's leader record, meta.ReplicaSet, and the replicator copies the
// records). The brokers of a set hold the same queues: the leader takes
// sends and pops, and each standby copies every queue of the set's
// replicated topics from it at the same offsets, fetching as follower
// StandbyID(dc, name). metasync passes the set's state in each topic's
// Order: Standby on a standby, and on the leader the term and the
// in-sync standbys (SetFollowers).
//
// Invariants:
//   - A standby leads nothing: it refuses sends (ErrNotLeader) and never
//     adopts an epoch from a send, and takes replica appends.
//   - The leader acknowledges a send only once every standby of
//     SetFollowers holds it, and refuses one while fewer than MinInSync
//     brokers of the set (itself included) are in sync; its reads stop at
//     the lowest offset those standbys hold. So every acknowledged (and
//     every consumed) record is on every in-sync standby, the only ones a
//     promotion picks.
//   - A standby leaves SetFollowers only by the leader's write of the set
//     record (StandbyProgress tells metasync that it lags); until the
//     record without it arrives, sends wait for it.
//   - Records of topics without a fencing epoch carry the set's term
//     (Order.stamp), so divergence after a promotion is found the same
//     way for every topic.

// setState is the broker's replica set role as metasync last applied it,
// for metrics.
type setState struct {
	standby atomic.Bool
	term    atomic.Uint64
	inSync  atomic.Int64
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

func (b *Broker) standbyError(topic string) error {
	return fmt.Errorf("%w: broker %s is a standby of its replica set: it takes no sends of topic %q, the set's leader does", ErrNotLeader, b.cfg.Name, topic)
}

// setMissing describes the in-sync standbys still behind upTo ("" when
// none is), or fails when the set has fewer brokers in sync than the
// topic's floor.
func (b *Broker) setMissing(t TopicConfig, upTo map[uint32]int64) (string, error) {
	if t.Order.Standby || t.Order.Term == 0 {
		return "", nil
	}
	if need := max(t.Order.MinInSync, 1); 1+len(t.Order.SetFollowers) < need {
		b.metrics.replicaTimeouts.Inc()
		return "", fmt.Errorf("%w: topic %q needs %d brokers of the replica set in sync (min-in-sync-replicas), and %d are (this leader and %s); the messages are stored on the leader and a retry of the same ids does not store them twice",
			ErrReplicaTimeout, t.Name, need, 1+len(t.Order.SetFollowers), orNone(t.Order.SetFollowers))
	}
	var behind []string
	for qid, want := range upTo {
		acked := b.repl.get(queueKey{t.Name, qid})
		for _, id := range t.Order.SetFollowers {
			if acked[id] < want {
				behind = append(behind, fmt.Sprintf("standby %s holds queue %d up to offset %d, not %d", id, qid, acked[id], want))
			}
		}
	}
	sort.Strings(behind)
	return strings.Join(behind, "; "), nil
}

// refuseBelowMinInSync refuses a send, before anything is stored, while
// fewer brokers of the set than the topic's floor are in sync.
func (b *Broker) refuseBelowMinInSync(t TopicConfig) error {
	if t.Order.Standby || t.Order.Term == 0 {
		return nil
	}
	if need := max(t.Order.MinInSync, 1); 1+len(t.Order.SetFollowers) < need {
		b.metrics.replicaTimeouts.Inc()
		return fmt.Errorf("%w: topic %q needs %d brokers of the replica set in sync (min-in-sync-replicas), and %d are (this leader and %s); nothing was stored, retry once a standby has caught up",
			ErrReplicaTimeout, t.Name, need, 1+len(t.Order.SetFollowers), orNone(t.Order.SetFollowers))
	}
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no standby"
	}
	return strings.Join(s, ", ")
}

// setReadCap is the lowest offset of queue qid that the in-sync standbys
// hold (no cap without any, or on a standby).
func (b *Broker) setReadCap(t TopicConfig, qid uint32, limit int64) int64 {
	if t.Order.Standby || len(t.Order.SetFollowers) == 0 {
		return limit
	}
	acked := b.repl.get(queueKey{t.Name, qid})
	for _, id := range t.Order.SetFollowers {
		limit = min(limit, acked[id])
	}
	return limit
}

// StandbyProgress reports how a standby (StandbyID) stands on every queue
// of the topics this broker copies to its set (Order.Term set): whether
// it holds each queue's end, and otherwise the store time of the oldest
// record it lacks (long ago when that record cannot be read).
func (b *Broker) StandbyProgress(id string) (caughtUp bool, lackingSince time.Time) {
	caughtUp = true
	for _, t := range b.Topics() {
		if t.Order.Term == 0 || t.Order.Standby {
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
