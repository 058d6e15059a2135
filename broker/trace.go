package broker

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/offsets"
	"github.com/duomq/duomq/internal/names"
)

// A message trace gathers, on one broker, every stored record of a message
// and what consumer groups did with each: the record in its topic (or the
// topic's mirror), a delayed message's record in the schedule topic while
// it is not yet due, and the retry and dead-letter copies the pop reviver
// made (ids "<id>:2", "<id>:3", ..., all on the broker that held the
// popped record). A proxy asks every broker of every DC and merges.

// Trace limits.
const (
	// DefaultTraceMessages and MaxTraceMessages bound the messages a trace
	// by key returns (newest first).
	DefaultTraceMessages = 32
	MaxTraceMessages     = 128
	// traceIDCandidates bounds the index candidates read per id: a topic
	// copy, schedule hops, a re-driven copy, one retry copy per group.
	traceIDCandidates = 256
	// maxRetryChain bounds the retry-copy ids looked up per message (a
	// group redelivers at most 128 times).
	maxRetryChain = 256
)

// TraceRequest names a message by id or by key.
type TraceRequest struct {
	// Topic restricts the search to the topic and its mirrors; required
	// with Key. Empty with ID: any topic (not the system ones).
	Topic string
	// Exactly one of ID and Key.
	ID, Key string
	// Max bounds the messages found by key (0: DefaultTraceMessages).
	Max int
}

// TracedCopy is one stored record of a traced message and what consumer
// groups did with it on this broker.
type TracedCopy struct {
	Message commitlog.Message
	// ReplicatedAt is when this broker stored the record as a copy from
	// another DC (zero for records stored by a send).
	ReplicatedAt time.Time
	// Groups are the groups with a committed offset or pop state on the
	// record's queue (for a retry or dead-letter copy: its group only),
	// sorted by name. Internal groups are left out.
	Groups []GroupProgress
}

// GroupProgress is one consumer group's position on a record's queue.
type GroupProgress struct {
	Group string
	// Committed is the group's committed offset of the queue; -1: none.
	Committed int64
	// Consumed: the committed offset is past the record (consumed, or
	// skipped by an offset reset).
	Consumed bool
	// Passed says whether the move past the record was raised from
	// another DC's offsets and bounds when it happened (zero times: this
	// broker does not remember; see offsets.Store.PassedAt).
	Passed offsets.Passed
	// InFlight: popped and not settled; Attempt counts its deliveries.
	InFlight       bool
	Attempt        int
	InvisibleUntil time.Time
	// Settled: popped and settled (acked, or copied to the retry or
	// dead-letter topic) while an earlier record holds the committed
	// offset back.
	Settled bool
}

// Trace returns every record of the message (by id), or of up to Max
// messages carrying the key (newest first), stored on this broker, with
// their retry and dead-letter copies. Nothing found is an empty result.
func (b *Broker) Trace(req TraceRequest) ([]TracedCopy, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	var found []commitlog.Message
	var err error
	if req.ID != "" {
		found, err = b.lookup(idKey(req.ID), traceIDCandidates, traceIDCandidates, func(m *commitlog.Message) bool {
			return m.ID == req.ID && inTracedTopic(m, req.Topic)
		})
	} else {
		found, err = b.traceByKey(req)
	}
	if err != nil {
		return nil, err
	}
	found = dropDeliveredSchedules(found)
	var ids []string
	for _, m := range found {
		if !slices.Contains(ids, m.ID) {
			ids = append(ids, m.ID)
		}
	}
	for _, id := range ids {
		copies, err := b.retryCopies(id, req.Topic)
		if err != nil {
			return nil, err
		}
		found = append(found, copies...)
	}
	out := make([]TracedCopy, len(found))
	for i := range found {
		out[i] = b.traceRecord(found[i])
	}
	return out, nil
}

func (req *TraceRequest) validate() error {
	if (req.ID == "") == (req.Key == "") {
		return fmt.Errorf("%w: a trace names a message by id or by key (exactly one)", ErrInvalidArgument)
	}
	if req.Key != "" && req.Topic == "" {
		return fmt.Errorf("%w: a trace by key needs the topic (keys are indexed per topic)", ErrInvalidArgument)
	}
	if req.Topic != "" {
		if err := names.Topic(req.Topic); err != nil || isSystemTopic(req.Topic) {
			return fmt.Errorf("%w: trace of topic %q: a user topic is expected", ErrInvalidName, req.Topic)
		}
	}
	if req.Max < 0 || req.Max > MaxTraceMessages {
		return fmt.Errorf("%w: max %d not in [0, %d]", ErrInvalidArgument, req.Max, MaxTraceMessages)
	}
	if req.Max == 0 {
		req.Max = DefaultTraceMessages
	}
	return nil
}

// traceByKey finds the newest messages carrying the key in the topic, its
// mirrors and the schedule topic (delayed ones not yet due).
func (b *Broker) traceByKey(req TraceRequest) ([]commitlog.Message, error) {
	var found []commitlog.Message
	for _, t := range append(b.copiesOf(req.Topic), ScheduleTopic) {
		ms, err := b.lookup(keyKey(t, req.Key), req.Max, req.Max*4, func(m *commitlog.Message) bool {
			return m.Topic == t && containsTag(m.Keys, req.Key) && inTracedTopic(m, req.Topic)
		})
		if err != nil {
			return nil, err
		}
		found = append(found, ms...)
	}
	slices.SortStableFunc(found, func(x, y commitlog.Message) int { return cmp.Compare(y.StoreTime, x.StoreTime) })
	return found[:min(len(found), req.Max)], nil
}

// copiesOf lists the topic and its mirrors that exist on this broker.
func (b *Broker) copiesOf(topic string) []string {
	var out []string
	for _, t := range b.Topics() {
		if _, of, ok := names.ParseMirror(t.Name); t.Name == topic || ok && of == topic {
			out = append(out, t.Name)
		}
	}
	return out
}

// inTracedTopic reports whether m is a record of topic: in the topic or a
// mirror of it, or scheduled for one (any user topic when topic is empty).
func inTracedTopic(m *commitlog.Message, topic string) bool {
	t := m.Topic
	if t == ScheduleTopic {
		t = m.Properties[PropRealTopic]
	}
	if _, of, ok := names.ParseMirror(t); ok {
		t = of
	}
	if topic == "" {
		return t != "" && !isSystemTopic(t)
	}
	return t == topic
}

// retryCopies finds the retry and dead-letter copies of id (of every
// group): "<id>:2", "<id>:3", ... until one is missing. A copy still in
// the schedule topic (its backoff running) stands for its retry copy.
func (b *Broker) retryCopies(id, topic string) ([]commitlog.Message, error) {
	var out []commitlog.Message
	for n := 2; n <= maxRetryChain; n++ {
		cid := id + ":" + strconv.Itoa(n)
		ms, err := b.lookup(idKey(cid), traceIDCandidates, traceIDCandidates, func(m *commitlog.Message) bool {
			return m.ID == cid && m.Properties[PropOriginID] == id && isRetryCopy(m) &&
				(topic == "" || originOf(m) == topic)
		})
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			break
		}
		out = append(out, dropDeliveredSchedules(ms)...)
	}
	return out, nil
}

func isRetryCopy(m *commitlog.Message) bool {
	t := m.Topic
	if t == ScheduleTopic {
		t = m.Properties[PropRealTopic]
	}
	return strings.HasPrefix(t, names.RetryPrefix) || strings.HasPrefix(t, names.DLQPrefix)
}

// originOf is the user topic a retry copy was made from.
func originOf(m *commitlog.Message) string {
	t := m.Properties[PropOriginTopic]
	if _, of, ok := names.ParseMirror(t); ok {
		return of
	}
	return t
}

// dropDeliveredSchedules keeps, of the schedule records of each (id,
// destination), only the newest (a delayed message hops between levels),
// and none once the record was delivered to its destination. found is
// newest first.
func dropDeliveredSchedules(found []commitlog.Message) []commitlog.Message {
	type dest struct{ id, topic string }
	delivered := map[dest]bool{}
	for _, m := range found {
		if m.Topic != ScheduleTopic {
			delivered[dest{m.ID, m.Topic}] = true
		}
	}
	return slices.DeleteFunc(found, func(m commitlog.Message) bool {
		if m.Topic != ScheduleTopic {
			return false
		}
		d := dest{m.ID, m.Properties[PropRealTopic]}
		drop := delivered[d]
		delivered[d] = true
		return drop
	})
}

// traceRecord describes one record and the groups' progress on its queue.
func (b *Broker) traceRecord(m commitlog.Message) TracedCopy {
	c := TracedCopy{Message: m}
	if m.Flags&commitlog.FlagReplicated != 0 {
		if ns, err := strconv.ParseInt(m.Properties[PropReplicatedAt], 10, 64); err == nil {
			c.ReplicatedAt = time.Unix(0, ns)
		}
	}
	if m.Topic == ScheduleTopic {
		return c // nobody consumes it yet
	}
	pops := b.queuePops(m.Topic, m.QueueID)
	var groups []string
	if g, ok := copyGroup(m.Topic); ok {
		groups = []string{g}
	} else {
		for _, e := range b.offs.Queue(m.Topic, m.QueueID) {
			groups = append(groups, e.Group)
		}
		for g := range pops {
			groups = append(groups, g)
		}
		groups = slices.DeleteFunc(groups, func(g string) bool { return strings.HasPrefix(g, "%") })
		slices.Sort(groups)
		groups = slices.Compact(groups)
	}
	for _, g := range groups {
		c.Groups = append(c.Groups, b.groupProgress(g, &m, pops[g]))
	}
	return c
}

// copyGroup is the group of a retry or dead-letter topic.
func copyGroup(topic string) (string, bool) {
	if g, ok := strings.CutPrefix(topic, names.RetryPrefix); ok {
		return g, true
	}
	return strings.CutPrefix(topic, names.DLQPrefix)
}

// queuePops returns the pop state of every group on one queue.
func (b *Broker) queuePops(topic string, queue uint32) map[string]*popQueue {
	b.popMu.Lock()
	defer b.popMu.Unlock()
	out := map[string]*popQueue{}
	for k, pq := range b.pops {
		if k.topic == topic && k.queue == queue {
			out[k.group] = pq
		}
	}
	return out
}

func (b *Broker) groupProgress(group string, m *commitlog.Message, pq *popQueue) GroupProgress {
	p := GroupProgress{Group: group, Committed: -1}
	if off, ok := b.offs.Get(group, m.Topic, m.QueueID); ok {
		p.Committed = off
		p.Passed, p.Consumed = b.offs.PassedAt(group, m.Topic, m.QueueID, m.QueueOffset)
	}
	if pq == nil {
		return p
	}
	pq.mu.Lock()
	defer pq.mu.Unlock()
	if pq.dropped || !pq.loaded {
		return p
	}
	if e := pq.inflight[m.QueueOffset]; e != nil {
		p.InFlight, p.Attempt, p.InvisibleUntil = true, e.attempt, e.invisibleUntil
	} else if !p.Consumed && m.QueueOffset >= pq.committed && m.QueueOffset < pq.next {
		p.Settled = true
	}
	return p
}
