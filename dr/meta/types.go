package meta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// DCState is a data center's state in the metadata.
type DCState string

// DC states.
const (
	// DCActive: the DC serves its share of traffic.
	DCActive DCState = "active"
	// DCDraining: the DC is being emptied of traffic (planned maintenance).
	DCDraining DCState = "draining"
	// DCDown: the DC is considered lost; it gets no traffic.
	DCDown DCState = "down"
)

// DC is a data center (site). CIDRs let SDKs find their own DC from their
// IP address.
type DC struct {
	Name      string    `json:"name"`
	CIDRs     []string  `json:"cidrs,omitempty"`
	State     DCState   `json:"state"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (d DC) clone() DC {
	d.CIDRs = slices.Clone(d.CIDRs)
	return d
}

// Replication is how a topic's messages reach the other DC.
type Replication string

// Replication modes.
const (
	// ReplicationNone: messages stay in the DC that received them.
	ReplicationNone Replication = "none"
	// ReplicationAsync: the replicator copies messages after the ack; the
	// RPO is the replication lag.
	ReplicationAsync Replication = "async"
	// ReplicationSync: a message is acked only once the other DC has it
	// (RPO = 0).
	ReplicationSync Replication = "sync"
)

// SyncPolicy is what a sync-replicated topic's sends do while a follower
// DC is out of the in-sync set (it lacked a record for longer than the
// brokers' isr-timeout).
type SyncPolicy string

// Sync policies.
const (
	// SyncPolicyFail: sends fail (retryable) until the follower is back in
	// sync, so an acked message is always in both DCs (RPO = 0). The
	// default of sync topics.
	SyncPolicyFail SyncPolicy = "fail"
	// SyncPolicyDegrade: sends are acked by the in-sync followers alone,
	// as with async replication, while a follower is out of sync; a
	// message acked then may be only in the primary DC until the follower
	// catches up.
	SyncPolicyDegrade SyncPolicy = "degrade"
)

// Defaults and limits of the records.
const (
	// MaxQueues bounds a topic's queue count (as the broker does).
	MaxQueues = 1024
	// DefaultMaxMessageBytes and MaxMessageBytesLimit bound a topic's
	// largest message.
	DefaultMaxMessageBytes = 4 << 20
	MaxMessageBytesLimit   = 64 << 20
	// DefaultRetentionAge is a topic's retention when none is given.
	DefaultRetentionAge = 72 * time.Hour
	// DefaultMaxRetries and MaxRetriesLimit bound a group's redeliveries.
	DefaultMaxRetries = 16
	MaxRetriesLimit   = 128
	// MaxTagsLen bounds a subscription's tag expression.
	MaxTagsLen = 1024
	// MaxWeight bounds one DC's traffic weight.
	MaxWeight = 10000
)

const (
	maxUpdatedByLen = 256
	maxRawKeyLen    = 512
	// defaultCASRetries bounds the re-reads of writes that retry a lost
	// race themselves (PutDC, SetDCState, DeleteTopic).
	defaultCASRetries = 8
	// maxTxnOps is etcd's default limit of operations (and, separately, of
	// compares) in one transaction.
	maxTxnOps = 128
)

// Topic is a topic's configuration.
type Topic struct {
	Name string
	// Ordered topics have one set of queues led by the primary DC and a
	// follower copy in the other DC at the same offsets.
	Ordered bool
	// Queues is the queue count (per DC for unordered topics), 1..1024. It
	// may only grow.
	Queues int
	// Primary is the home DC of an ordered topic, where it is created and
	// where failback returns it. The DC serving writes right now is
	// Ordered.Primary, which the controller moves. Empty for unordered
	// topics.
	Primary string
	// Replication defaults to sync for ordered topics and none otherwise;
	// ordered topics need sync or async (the follower copy is what
	// failover promotes).
	Replication Replication
	// SyncPolicy applies to replication sync only (default fail there,
	// empty otherwise).
	SyncPolicy SyncPolicy
	// RetentionAge is how long messages are kept (default 72h).
	RetentionAge time.Duration
	// MaxMessageBytes is the largest accepted body (default 4 MiB).
	MaxMessageBytes int64
	// MinInSyncReplicas is the fewest copies of a message, the leader's
	// included, that must be in sync for a send to be acked (1..
	// MaxMinInSyncReplicas; 0 means 1): the leader, the in-sync standbys
	// of its replica set and, for replication sync, each follower DC in
	// the topic's in-sync set. Every in-sync copy is always waited for
	// (so a promoted standby holds every acked message); below the floor
	// sends are refused at once, nothing stored. RocketMQ's 2-3 mode, 2
	// of 3 with one in the other DC, is replication sync with 2.
	MinInSyncReplicas int
}

// MaxMinInSyncReplicas bounds Topic.MinInSyncReplicas.
const MaxMinInSyncReplicas = 8

// topicJSON is Topic as stored: the retention is a duration string.
type topicJSON struct {
	Name            string      `json:"name"`
	Ordered         bool        `json:"ordered"`
	Queues          int         `json:"queues"`
	Primary         string      `json:"primary,omitempty"`
	Replication     Replication `json:"replication"`
	SyncPolicy      SyncPolicy  `json:"sync_policy,omitempty"`
	RetentionAge    string      `json:"retention_age,omitempty"`
	MaxMessageBytes int64       `json:"max_message_bytes,omitempty"`
	MinInSync       int         `json:"min_in_sync_replicas,omitempty"`
}

// MarshalJSON stores RetentionAge as a duration string such as "72h0m0s".
func (t Topic) MarshalJSON() ([]byte, error) {
	j := topicJSON{
		Name: t.Name, Ordered: t.Ordered, Queues: t.Queues, Primary: t.Primary,
		Replication: t.Replication, SyncPolicy: t.SyncPolicy, MaxMessageBytes: t.MaxMessageBytes,
		MinInSync: t.MinInSyncReplicas,
	}
	if t.RetentionAge != 0 {
		j.RetentionAge = t.RetentionAge.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON is the inverse of MarshalJSON.
func (t *Topic) UnmarshalJSON(b []byte) error {
	var j topicJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var age time.Duration
	if j.RetentionAge != "" {
		d, err := time.ParseDuration(j.RetentionAge)
		if err != nil {
			return fmt.Errorf("retention_age: %w", err)
		}
		age = d
	}
	*t = Topic{
		Name: j.Name, Ordered: j.Ordered, Queues: j.Queues, Primary: j.Primary,
		Replication: j.Replication, SyncPolicy: j.SyncPolicy, RetentionAge: age, MaxMessageBytes: j.MaxMessageBytes,
		MinInSyncReplicas: j.MinInSync,
	}
	return nil
}

// ConsumeMode is how a group's consumers share messages.
type ConsumeMode string

// Consume modes.
const (
	// ModeClustering: each message goes to one consumer of the group.
	ModeClustering ConsumeMode = "clustering"
	// ModeBroadcast: each message goes to every consumer of the group.
	ModeBroadcast ConsumeMode = "broadcast"
)

// Subscription is one subscribed topic and its tag filter.
type Subscription struct {
	Topic string `json:"topic"`
	// Tags is a tag expression such as "TagA || TagB"; "*" (the default)
	// means every tag.
	Tags string `json:"tags"`
}

// Group is a consumer group's configuration.
type Group struct {
	Name          string         `json:"name"`
	Subscriptions []Subscription `json:"subscriptions"`
	// MaxRetries is how often a message is redelivered before it goes to
	// the dead-letter topic %DLQ%<group>; 0 means DefaultMaxRetries.
	MaxRetries int         `json:"max_retries"`
	Mode       ConsumeMode `json:"mode"`
	// Ordered groups consume each queue in order, one message at a time.
	Ordered bool `json:"ordered"`
}

func (g Group) clone() Group {
	g.Subscriptions = slices.Clone(g.Subscriptions)
	return g
}

// Topics are the subscribed topics in subscription order.
func (g Group) Topics() []string {
	out := make([]string, len(g.Subscriptions))
	for i, s := range g.Subscriptions {
		out[i] = s.Topic
	}
	return out
}

// Ordered is the fencing record of an ordered topic: in one epoch only its
// primary accepts writes. Every change increases Epoch.
type Ordered struct {
	Topic   string `json:"topic"`
	Primary string `json:"primary"`
	Epoch   uint64 `json:"epoch"`
	// Blocked: no DC accepts writes of the topic in this epoch (a
	// switchover waits for the follower to catch up, or a failover waits
	// out the old primary's lease). Primary is still the DC that last
	// accepted writes.
	Blocked bool `json:"blocked,omitempty"`
}

// Alive is a broker's liveness record, alive/<dc>/<broker>, kept under an
// etcd lease: it disappears when the broker stops renewing it, and a broker
// accepts writes of ordered topics only while its lease is renewed (so once
// a DC's records are gone from the quorum, none of its brokers accepts an
// ordered write).
type Alive struct {
	Name    string    `json:"name"`
	DC      string    `json:"dc"`
	Address string    `json:"address"`
	Started time.Time `json:"started"`
	// Set is the broker's replica set (Member.Set), written into its
	// registration with its first liveness record.
	Set string `json:"set,omitempty"`
}

// Traffic routes unordered writes between DCs.
type Traffic struct {
	// Weights are per-DC write weights; a DC without a weight gets none
	// once any weight is set. Empty means every active DC equally.
	Weights map[string]int `json:"weights,omitempty"`
	// TopicOverrides replace Weights for one topic.
	TopicOverrides map[string]map[string]int `json:"topic_overrides,omitempty"`
	// BlockedDCs accept no writes of unordered topics.
	BlockedDCs []string `json:"blocked_dcs,omitempty"`
}

func (t Traffic) clone() Traffic {
	t.Weights = maps.Clone(t.Weights)
	if t.TopicOverrides != nil {
		o := make(map[string]map[string]int, len(t.TopicOverrides))
		for k, v := range t.TopicOverrides {
			o[k] = maps.Clone(v)
		}
		t.TopicOverrides = o
	}
	t.BlockedDCs = slices.Clone(t.BlockedDCs)
	return t
}

// Offset is a checkpointed consumer offset.
type Offset struct {
	Offset    int64     `json:"offset"`
	UpdatedAt time.Time `json:"updated_at"`
}

// OffsetKey names one offset: a group's position in one queue of one
// topic in one DC.
type OffsetKey struct {
	Group string
	Topic string
	DC    string
	Queue int
}

// OffsetKV is an offset and its key.
type OffsetKV struct {
	OffsetKey
	Offset
}

// Member is a broker's registration in its DC: written when it first
// registers and kept while it is down, until an operator forgets it
// (Store.ForgetBroker). The registered brokers, not the live ones, make a
// DC's placement, so a broker's death leaves its queues unavailable
// rather than moving them to a broker that does not hold their data.
type Member struct {
	Name string `json:"name"`
	DC   string `json:"dc"`
	// Address is where the broker served when it first registered.
	Address    string    `json:"address"`
	Registered time.Time `json:"registered"`
	// Set is the replica set the broker belongs to (its own name when it
	// is alone in one): the brokers of a set hold the same queues, one
	// leading them (ReplicaSet) and the others copying them.
	Set string `json:"set,omitempty"`
}

// SetName is the replica set of a registration: Set, or the broker's own
// name when it names none.
func (m Member) SetName() string {
	if m.Set != "" {
		return m.Set
	}
	return m.Name
}

// Slot is one place of a DC's placement: a replica set of registered
// brokers, named by the broker that leads it, with the leader's liveness
// record when it is live. A broker alone in its set is a slot of its own
// (Set is then its name).
type Slot struct {
	Name  string // the leading broker
	Live  bool
	Alive Alive // zero unless Live
	// Set names the replica set; Term is its leadership term (0: no
	// leader record yet, or a broker that names no set).
	Set  string
	Term uint64
	// Named: its members name a replica set (Config.ReplicaSet), so the
	// slot is led only through its leader record, however many members
	// have registered yet.
	Named bool
	// Standbys are the set's other brokers, sorted by name, each with its
	// liveness record when it is live.
	Standbys []Standby
	// InSync are the standbys the leader counts as holding every record
	// it acknowledged (ReplicaSet.InSync).
	InSync []string
	// Fenced are the epochs the set's last promotion raised
	// (ReplicaSet.Fenced).
	Fenced map[string]FencedEpoch
}

// Standby is a broker of a replica set that copies its leader.
type Standby struct {
	Name  string
	Live  bool
	Alive Alive // zero unless Live
}

// ReplicaSet is the leader record sets/<dc>/<set> of a replica set of
// more than one broker (RocketMQ's master and slaves): which member leads
// the set's queues, in which term, and which standbys hold every record
// the leader acknowledged.
//
// Invariants:
//   - The leader acknowledges a send of a replicated topic only once
//     every standby of InSync holds it; it removes a standby from InSync
//     (a compare-and-swap of this record) before it acknowledges without
//     it, and adds one back once it holds every queue's end.
//   - Only a live standby of InSync is promoted, in one transaction with
//     the leader's liveness record gone (the old leader's lease expired,
//     so it takes no ordered write) and the epoch of every ordered topic
//     the DC leads raised: so every acknowledged record survives, and a
//     returning old leader finds its unacknowledged tail by the epoch
//     check and truncates it (quarantined) before it follows.
//   - Term only grows; it stamps the records of unordered topics, which
//     have no fencing epoch, for the same check.
type ReplicaSet struct {
	DC        string    `json:"dc"`
	Name      string    `json:"name"`
	Leader    string    `json:"leader"`
	Term      uint64    `json:"term"`
	InSync    []string  `json:"in_sync,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// Reason says why the record last changed (created, promotion, a
	// standby leaving or rejoining InSync).
	Reason string `json:"reason,omitempty"`
	// Fenced are the epochs the last promotion gave the ordered topics
	// the DC leads. The new leader takes no write of such a topic at an
	// older epoch, even while its view of ordered/ still shows the record
	// the promotion replaced (the two keys reach a watcher apart): a write
	// of the new term stamped with the old epoch would hide the old
	// leader's unacknowledged tail from the epoch check.
	Fenced map[string]FencedEpoch `json:"fenced,omitempty"`
}

// FencedEpoch is the epoch a promotion gave an ordered topic, and the
// revision of the fencing record it replaced.
type FencedEpoch struct {
	Epoch    uint64 `json:"epoch"`
	Replaced int64  `json:"replaced_rev"`
}

// EpochFor is the epoch a set's leader applies to an ordered topic whose
// fencing record it sees at rev with epoch: the promotion's when rev is
// the record that promotion replaced, else epoch.
func (s Slot) EpochFor(topic string, epoch uint64, rev int64) uint64 {
	if f, ok := s.Fenced[topic]; ok && f.Replaced == rev {
		return max(epoch, f.Epoch)
	}
	return epoch
}

func (r ReplicaSet) clone() ReplicaSet {
	r.InSync = slices.Clone(r.InSync)
	r.Fenced = maps.Clone(r.Fenced)
	return r
}

// Place is the slot of logical queue q in a DC's placement: queue q of a
// replicated topic (ordered, or unordered with mirrors) lives on broker
// q mod n of the DC's registered brokers sorted by name. It panics on an
// empty placement; callers check for one first.
func Place(slots []Slot, q int) Slot { return slots[q%len(slots)] }

// AnyLive reports whether some slot of a placement is live (the DC has a
// live broker).
func AnyLive(slots []Slot) bool {
	return slices.ContainsFunc(slots, func(s Slot) bool { return s.Live })
}

// placement builds a DC's slots from its registrations, liveness records
// and replica set records, one slot per replica set, sorted by set name.
// A live broker not registered yet (its registration is written with its
// first liveness record, so only a broker of an older version) takes a
// slot of its own. A named replica set, even of one broker so far, is
// led by its record's leader; before the record exists by nobody: the
// slot names its first live member by name, which claims the record,
// and is not live until then. So nothing is written to or copied from a
// named set without a leader record, and a member that starts alone
// leads in a term that a later member follows instead of leading alone
// and being cut back.
func placement(members map[string]Member, alive map[string]Alive, sets map[string]ReplicaSet) []Slot {
	bySet := map[string][]string{}
	for name, m := range members {
		bySet[m.SetName()] = append(bySet[m.SetName()], name)
	}
	for name := range alive {
		if _, ok := members[name]; !ok {
			bySet[name] = append(bySet[name], name)
		}
	}
	out := make(map[string]Slot, len(bySet))
	for set, brokers := range bySet {
		slices.Sort(brokers)
		s := Slot{Set: set, Name: brokers[0], Named: slices.ContainsFunc(brokers, func(b string) bool {
			return members[b].Set != "" || alive[b].Set != ""
		})}
		if i := slices.IndexFunc(brokers, func(b string) bool { _, ok := alive[b]; return ok }); i >= 0 {
			s.Name = brokers[i] // no record yet: the first live member claims it
		}
		rec, hasRec := sets[set]
		if hasRec && slices.Contains(brokers, rec.Leader) {
			s.Name, s.Term, s.InSync, s.Fenced = rec.Leader, rec.Term, slices.Clone(rec.InSync), maps.Clone(rec.Fenced)
		}
		if a, ok := alive[s.Name]; ok && (!s.Named || s.Term > 0) {
			s.Live, s.Alive = true, a
		}
		for _, b := range brokers {
			if b == s.Name {
				continue
			}
			a, ok := alive[b]
			s.Standbys = append(s.Standbys, Standby{Name: b, Live: ok, Alive: a})
		}
		out[set] = s
	}
	return sortedValues(out, func(s Slot) Slot { return s })
}

// GroupQueuesMirrored reports whether a group's retry and dead-letter
// queues (%RETRY%<group>, %DLQ%<group>) are copied to the other DCs, as
// the queues of replicated unordered topics are: the group is unordered
// (ordered groups redeliver in place) and subscribes to a replicated topic
// (or to no topic in particular). topic looks a topic up by name.
func GroupQueuesMirrored(g Group, topic func(string) (Topic, bool)) bool {
	if g.Ordered {
		return false
	}
	if len(g.Subscriptions) == 0 {
		return true
	}
	for _, name := range g.Topics() {
		if t, ok := topic(name); ok && t.Replication != "" && t.Replication != ReplicationNone {
			return true
		}
	}
	return false
}
