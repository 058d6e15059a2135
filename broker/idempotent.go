package broker

import (
	"strings"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
)

// Idempotent sends.
//
// A message sent with SendRequest.Idempotent is stored only if no record
// with its id was stored before in the same place: the same topic, and for
// a delayed message (stored in ScheduleTopic) the same real topic. Scoping
// by topic keeps a delayed message's delivery to its real topic from being
// taken for a duplicate of its own schedule record, and a retry copy from
// being taken for its original. A duplicate's result is the original's
// placement with Duplicate set, returned once the original is durable.
//
// The check runs under appendMu, so two concurrent sends of one id store
// it once. It looks in a bounded in-memory cache of recent idempotent ids
// first (idempotency-cache-size entries, idempotency-window), then in the
// persistent id index (each candidate record read and compared), which
// also covers ids stored before a restart. A cache entry is evicted only
// once the dispatcher has indexed its record, so between the two every
// stored id is always found, whatever the cache size.

// dedupeScope is the key of an idempotent id: where it was stored and the id.
func dedupeScope(topic, real, id string) string {
	if topic == real {
		return topic + "\x00" + id
	}
	return topic + "\x00" + real + "\x00" + id
}

// idPlacement is a cached original placement.
type idPlacement struct {
	res   SendResult
	end   int64 // commitlog end of the original's append (for WaitDurable)
	added time.Time
}

// idCache is a FIFO-bounded map of recent idempotent ids. It is guarded by
// Broker.appendMu.
type idCache struct {
	max    int
	window time.Duration
	m      map[string]idPlacement
	fifo   []string
	head   int
}

func newIDCache(max int, window time.Duration) *idCache {
	return &idCache{max: max, window: window, m: map[string]idPlacement{}}
}

func (c *idCache) get(key string) (idPlacement, bool) {
	p, ok := c.m[key]
	return p, ok
}

func (c *idCache) put(key string, p idPlacement) {
	if _, ok := c.m[key]; !ok {
		c.fifo = append(c.fifo, key)
	}
	c.m[key] = p
}

// evict drops the oldest entries beyond the size or the window whose
// records the dispatcher has indexed (end <= indexed).
func (c *idCache) evict(now time.Time, indexed int64) {
	for c.head < len(c.fifo) {
		key := c.fifo[c.head]
		p := c.m[key]
		if len(c.m) <= c.max && now.Sub(p.added) <= c.window || p.end > indexed {
			break
		}
		delete(c.m, key)
		c.fifo[c.head] = ""
		c.head++
	}
	if c.head > 1024 && c.head*2 > len(c.fifo) {
		c.fifo = append([]string(nil), c.fifo[c.head:]...)
		c.head = 0
	}
}

// findDuplicate returns the placement of an id already stored in topic
// (with real topic real, for the schedule topic). The caller holds
// appendMu.
func (b *Broker) findDuplicate(topic, real, id string) (idPlacement, bool, error) {
	if p, ok := b.ids.get(dedupeScope(topic, real, id)); ok {
		return p, true, nil
	}
	m, ok, err := b.lookupStored(topic, real, id)
	if err != nil || !ok {
		return idPlacement{}, false, err
	}
	res := SendResult{ID: id, Topic: m.Topic, QueueID: m.QueueID, QueueOffset: m.QueueOffset, StoreTime: time.Unix(0, m.StoreTime), Duplicate: true}
	return idPlacement{res: res}, true, nil
}

// maxIDCandidates bounds the index candidates read for one id: a delayed
// message leaves a record per schedule hop besides its delivery.
const maxIDCandidates = 64

// lookupStored finds the first record of id stored in topic through the id
// index (which lists the newest first). A record counts only while its
// topic's consume queue still points at it: one of a deleted topic, or cut
// off by recovery, is not "stored". The caller holds mu (read).
func (b *Broker) lookupStored(topic, real, id string) (commitlog.Message, bool, error) {
	positions, err := b.idx.Lookup(idKey(id), maxIDCandidates)
	if err != nil {
		return commitlog.Message{}, false, err
	}
	var first commitlog.Message
	found := false
	for _, pos := range positions {
		if pos < b.clog.MinPos() || pos >= b.clog.WrittenPos() {
			continue
		}
		m, err := b.readAt(pos)
		if err != nil {
			return commitlog.Message{}, false, err
		}
		if m.ID == id && m.Topic == topic && (topic != ScheduleTopic || m.Properties[PropRealTopic] == real) && b.queuedAt(&m, pos) {
			first, found = m, true
		}
	}
	return first, found, nil
}

// queuedAt reports whether m's queue entry is the record at pos. The
// caller holds mu (read).
func (b *Broker) queuedAt(m *commitlog.Message, pos int64) bool {
	q, ok := b.queues[queueKey{m.Topic, m.QueueID}]
	if !ok {
		return false
	}
	e, err := q.cq.Get(m.QueueOffset)
	return err == nil && e.Pos == pos
}

// dropTopic forgets the ids stored in a deleted topic.
func (c *idCache) dropTopic(topic string) {
	for key := range c.m {
		if strings.HasPrefix(key, topic+"\x00") || strings.HasPrefix(key, ScheduleTopic+"\x00"+topic+"\x00") {
			delete(c.m, key)
		}
	}
}
