package broker

import (
	"fmt"
	"slices"
	"time"
)

// Replication of ordered topics across DCs (the broker's side; the
// replicator process moves the records, the controller moves leadership).
//
// Roles. Every DC's brokers host every queue of an ordered topic. The
// topic's fencing record (meta.Ordered: primary DC, epoch, blocked), passed
// in by metasync as an Order, makes this broker the leader of its queues
// when its DC is the primary and the topic is not blocked; otherwise it is
// a follower. A leader takes sends stamped with the current epoch; a
// follower refuses them (ErrNotLeader) and takes replica appends instead,
// which copy the leader's records at the same queue offsets. A send
// stamped with a newer epoch is the sender having read a newer record
// naming this DC the primary: the broker adopts the epoch and leads.
//
// Invariants:
//   - Within one epoch only the primary DC's brokers append client writes
//     to a queue: epochs only grow, every record stores its epoch, and a
//     send with an older epoch is refused under appendMu.
//   - Lease: when lease checks are enabled (a broker connected to the
//     metadata service), a leader accepts an ordered write only while its
//     liveness lease was renewed with the etcd quorum less than the lease
//     TTL ago. The renewal time is taken before the request is sent, so the
//     broker stops no later than the quorum expires its liveness record:
//     once a DC's records are gone, none of its brokers accepts an ordered
//     write, and a controller may promote another DC.
//   - Sync replication: a send of a topic with replication=sync returns
//     only once every follower DC of the topic's in-sync set has
//     acknowledged the records (its fetch offset passed them), or fails
//     with ErrReplicaTimeout; also when the broker stopped leading
//     meanwhile. A follower DC the controller marked down is not in
//     Order.Followers. A fetch acknowledges only a prefix that agrees with
//     this log (divergence is checked first), and acknowledgements are
//     forgotten when this queue is truncated, the only way a prefix
//     changes.
//   - In-sync set (replica_isr.go): the broker whose DC is a sync topic's
//     primary keeps, per follower DC in Order.Followers, whether it is in
//     sync. A follower leaves when, on some queue, it has lacked a record
//     stored here for longer than isr-timeout (counted from when this
//     broker began waiting for it at the earliest); it re-enters once it
//     holds every queue's end, or lacks only records younger than a
//     quarter of isr-timeout. Every change is logged and counted.
//   - Sync policy "fail" (the default): while a follower DC of
//     Order.Followers is out of the in-sync set, sends fail at once with
//     ErrReplicaTimeout, so an acked message is always in every follower
//     DC (RPO = 0). Reads stop at the lowest offset any follower in
//     Order.Followers acknowledged, so no consumer sees a message that a
//     failover could lose.
//   - Sync policy "degrade": sends wait only for the in-sync followers
//     (possibly none), and reads stop at the lowest offset they
//     acknowledged. So while a follower DC is out of sync, an acked
//     message may exist only in the primary DC (RPO > 0 for that window);
//     the topic is then exported as degraded (duomq_broker_sync_degraded).
//     Readers are never capped by a follower that sends do not wait for,
//     or consumers would stall on acked messages.
//   - Epoch history: a queue's records have non-decreasing epochs, so the
//     end of an epoch in a queue is found by binary search; a follower
//     whose last epoch ended earlier on the leader truncates to that point
//     (divergence), quarantining what it cuts, before it follows.

// Order is the part of an ordered topic's fencing record and replication
// settings that a broker acts on.
type Order struct {
	// Primary is the DC that leads the topic in its epoch ("" before the
	// first record: this broker leads, as for a standalone broker).
	Primary string `json:"primary,omitempty"`
	// Blocked: no DC takes writes in this epoch (switchover in progress).
	Blocked bool `json:"blocked,omitempty"`
	// Replication is none, async or sync (meta.Replication).
	Replication string `json:"replication,omitempty"`
	// Followers are the DCs that must acknowledge a sync send (the other
	// DCs that are not down) while they are in the in-sync set.
	Followers []string `json:"followers,omitempty"`
	// SyncPolicy is what a sync send does while a follower DC is out of
	// the in-sync set: SyncPolicyFail ("" too) or SyncPolicyDegrade.
	SyncPolicy string `json:"sync_policy,omitempty"`
	// Standby: this broker is a standby of its replica set (see
	// replica_set.go): it leads no queue of the topic and takes replica
	// appends from the set's leader instead.
	Standby bool `json:"standby,omitempty"`
	// Term is the replica set's leadership term (0: the broker is alone
	// in its set). Records of a topic without a fencing epoch are stamped
	// with it, so a returning leader's tail is found by the epoch check.
	Term uint64 `json:"term,omitempty"`
	// SetWrites: this broker leads its replica set and takes sends of the
	// topic, so they wait for the set's standbys (SetFollowers and those
	// the set keeper is admitting, see replica_set.go).
	SetWrites bool `json:"set_writes,omitempty"`
	// SetFollowers are the in-sync standbys of the leader's replica set
	// (StandbyID) as its record lists them: a send returns only once each
	// holds it.
	SetFollowers []string `json:"set_followers,omitempty"`
	// MinInSync is the fewest copies, this leader's included, that must
	// be in sync for a send to be acked (0 means 1): the leader, its
	// in-sync standbys and, for replication sync, the follower DCs in the
	// topic's in-sync set.
	MinInSync int `json:"min_in_sync,omitempty"`
}

// Sync policies (meta.SyncPolicy).
const (
	// SyncPolicyFail: sends fail while a follower DC is out of sync.
	SyncPolicyFail = "fail"
	// SyncPolicyDegrade: sends are acked by the in-sync followers alone.
	SyncPolicyDegrade = "degrade"
)

// syncReplicated reports whether sends wait for followers.
func (o Order) syncReplicated() bool { return o.Replication == "sync" && len(o.Followers) > 0 }

// degrades reports whether sends go on without out-of-sync followers.
func (o Order) degrades() bool { return o.SyncPolicy == SyncPolicyDegrade }

// policy names the sync policy for messages.
func (o Order) policy() string {
	if o.degrades() {
		return SyncPolicyDegrade
	}
	return SyncPolicyFail
}

// primaryIs reports whether dc is the primary (leading or blocked).
func (o Order) primaryIs(dc string) bool { return !o.Standby && (o.Primary == "" || o.Primary == dc) }

// leads reports whether a broker in dc leads a topic with this order.
func (o Order) leads(dc string) bool {
	return (o.Primary == "" || o.Primary == dc) && !o.Blocked && !o.Standby
}

// stamp is the epoch stored in a record of a topic at fencing epoch
// epoch: the epoch itself, or the replica set's term when the topic has
// none.
func (o Order) stamp(epoch uint64) uint64 {
	if epoch > 0 {
		return epoch
	}
	return o.Term
}

// SetTopicOrder applies an ordered topic's fencing record: raise the epoch
// (never lower it), and at the current epoch take the record's primary and
// blocked flag. Replication and followers always apply. A broker that
// stops leading forgets its consumers' pop state of the topic (the new
// leader's consumers own it).
func (b *Broker) SetTopicOrder(topic string, epoch uint64, o Order) error {
	wasLeader, t, err := b.setTopicOrder(topic, epoch, o)
	if err != nil {
		return err
	}
	if wasLeader && !t.Order.leads(b.cfg.DC) {
		b.log.Info("no longer leading topic", "topic", topic, "epoch", t.Epoch, "primary", t.Order.Primary, "blocked", t.Order.Blocked)
		b.dropPopState(func(k popKey) bool { return k.topic == topic }, nil)
	}
	b.evalSyncSet(topic, time.Now()) // followers added or dropped
	b.repl.changed()                 // senders waiting for followers re-read them
	b.wake()
	return nil
}

func (b *Broker) setTopicOrder(topic string, epoch uint64, o Order) (bool, TopicConfig, error) {
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	t, err := b.topicLocked(topic)
	if err != nil {
		return false, t, err
	}
	wasLeader := t.Epoch > 0 && t.Order.leads(b.cfg.DC)
	before := t
	switch {
	case epoch > t.Epoch:
		t.Epoch, t.Order = epoch, o
	case epoch == t.Epoch:
		t.Order = o
	default: // an older record: only replication settings apply
		t.Order.Replication, t.Order.Followers, t.Order.SyncPolicy = o.Replication, o.Followers, o.SyncPolicy
		t.Order.Standby, t.Order.Term, t.Order.SetFollowers, t.Order.MinInSync = o.Standby, o.Term, o.SetFollowers, o.MinInSync
		t.Order.SetWrites = o.SetWrites
	}
	t.Order.Followers = slices.Clone(t.Order.Followers)
	t.Order.SetFollowers = slices.Clone(t.Order.SetFollowers)
	if t.Epoch == before.Epoch && t.Order.equal(before.Order) {
		return wasLeader, t, nil // every metadata pass repeats it: no write
	}
	return wasLeader, t, b.putTopicLocked(t)
}

func (o Order) equal(p Order) bool {
	return o.Primary == p.Primary && o.Blocked == p.Blocked && o.Replication == p.Replication &&
		o.SyncPolicy == p.SyncPolicy && slices.Equal(o.Followers, p.Followers) &&
		o.Standby == p.Standby && o.Term == p.Term && slices.Equal(o.SetFollowers, p.SetFollowers) && o.MinInSync == p.MinInSync &&
		o.SetWrites == p.SetWrites
}

// EnableLease makes ordered writes depend on RenewLease (see the lease
// invariant above). Until the first renewal no ordered write is accepted.
func (b *Broker) EnableLease(ttl time.Duration) {
	b.leaseTTL.Store(int64(ttl))
}

// RenewLease records a renewal whose request was sent at sent.
func (b *Broker) RenewLease(sent time.Time) {
	until := sent.Add(time.Duration(b.leaseTTL.Load())).UnixNano()
	for {
		cur := b.leaseUntil.Load()
		if until <= cur || b.leaseUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// checkLease is nil while ordered writes are allowed by the lease.
func (b *Broker) checkLease(now time.Time) error {
	if b.leaseTTL.Load() == 0 {
		return nil
	}
	until := time.Unix(0, b.leaseUntil.Load())
	if now.Before(until) {
		return nil
	}
	return fmt.Errorf("%w: broker %s last renewed its lease with the metadata quorum more than %v ago; it takes no ordered writes until it renews",
		ErrLeaseExpired, b.cfg.Name, time.Duration(b.leaseTTL.Load()))
}
