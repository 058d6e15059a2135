package broker

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/internal/msgid"
)

// maxHeaderBytes bounds everything of a message but its body (keys, tag,
// properties...), so a record is never larger than the body limit plus this.
const maxHeaderBytes = 64 << 10

// MaxBatch bounds the messages of one Send.
const MaxBatch = 1024

// Message is what a sender supplies for one message.
type Message struct {
	ID          string
	Keys        []string
	Tag         string
	ShardingKey string
	// Properties are the message's headers. PropDeliverAt delays it.
	Properties map[string]string
	Body       []byte
	BornTime   time.Time
	BornDC     string
	Flags      uint32
}

// SendRequest appends a batch to one queue of a topic.
type SendRequest struct {
	Topic string
	// QueueID is the queue; -1 lets the broker pick (round robin).
	QueueID  int32
	Messages []Message
	// Epoch is the fencing token the sender read for an ordered topic; 0
	// for a topic that is not fenced. See SetTopicEpoch.
	Epoch uint64
	// Idempotent: a message whose id was already stored (in this topic) is
	// not stored again; its result is the original placement.
	Idempotent bool
}

// SendResult is the placement of one appended message.
type SendResult struct {
	ID string
	// Topic is where the message is stored: the request's topic, or
	// ScheduleTopic for a delayed message until it is due.
	Topic       string
	QueueID     uint32
	QueueOffset int64
	StoreTime   time.Time
	// Duplicate: the id was already stored; this is the original placement.
	Duplicate bool
}

// Send validates a batch, appends it to the commitlog with consecutive
// offsets of one queue, and returns once the flush policy is satisfied:
// under sync flush only after an fsync covers the whole batch. Nothing is
// written when any message is invalid. A message whose PropDeliverAt lies
// in the future goes to the schedule topic instead and is delivered to the
// queue when due (its result is the schedule placement).
func (b *Broker) Send(ctx context.Context, req SendRequest) ([]SendResult, error) {
	start := time.Now()
	out, err := b.sendAppend(req)
	if err != nil {
		b.metrics.sendErrors.Inc()
		return nil, err
	}
	if err := b.clog.WaitDurable(ctx, out.end); err != nil {
		b.metrics.sendErrors.Inc()
		return nil, fmt.Errorf("broker: flush: %w", err)
	}
	if err := b.awaitFollowers(ctx, req.Topic, out.results); err != nil {
		b.metrics.sendErrors.Inc()
		return nil, err
	}
	b.metrics.observeSend(req.Topic, out.stored, out.bytes, time.Since(start))
	return out.results, nil
}

// item is one record to append and where it goes.
type item struct {
	topic string
	queue int32 // -1: round robin
	msg   commitlog.Message
	// real is the topic a schedule record is for (topic otherwise).
	real string
	// dedupe: skip the record if its id is already stored (idempotent).
	dedupe bool
}

// appended is the outcome of one append under appendMu.
type appended struct {
	results []SendResult
	end     int64 // commitlog position to wait for
	stored  int   // records written (duplicates excluded)
	bytes   int
}

func (b *Broker) sendAppend(req SendRequest) (appended, error) {
	if req.Topic == ScheduleTopic {
		return appended{}, fmt.Errorf("%w: %s is internal: send with property %s instead", ErrInvalidArgument, ScheduleTopic, PropDeliverAt)
	}
	if err := b.ensureScheduleFor(req.Messages); err != nil {
		return appended{}, err
	}
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	if b.isClosed() {
		return appended{}, ErrClosed
	}
	t, _, qid, err := b.writableQueue(req)
	if err != nil {
		return appended{}, err
	}
	if t.Order.Standby {
		return appended{}, b.standbyError(t.Name)
	}
	if err := b.belowMinInSync(t, false); err != nil {
		return appended{}, err
	}
	if t.Epoch, err = b.admitEpoch(t, req.Epoch); err != nil {
		return appended{}, err
	}
	if err := b.refuseOutOfSync(t, false); err != nil {
		return appended{}, err
	}
	items, err := b.sendItems(req, t, qid, time.Now())
	if err != nil {
		return appended{}, err
	}
	return b.appendItemsLocked(items)
}

// sendItems validates a send's messages and turns them into items.
func (b *Broker) sendItems(req SendRequest, t TopicConfig, qid uint32, now time.Time) ([]item, error) {
	limit := b.messageLimit(t)
	items := make([]item, len(req.Messages))
	for i, in := range req.Messages {
		m, err := b.toRecord(i, in, t.Name, qid, 0, now, limit)
		if err != nil {
			return nil, err
		}
		m.Epoch = t.Order.stamp(t.Epoch)
		it := item{topic: t.Name, queue: int32(qid), msg: m, real: t.Name, dedupe: req.Idempotent}
		at, delayed, err := deliverAt(in.Properties, now)
		if err != nil {
			return nil, fmt.Errorf("%w: message %d: %v", ErrInvalidArgument, i, err)
		}
		if delayed && at.Sub(now) > b.cfg.MaxDelay {
			return nil, fmt.Errorf("%w: message %d: %s is %v ahead, over the limit of %v (max-delay)", ErrInvalidArgument, i, PropDeliverAt, at.Sub(now).Round(time.Millisecond), b.cfg.MaxDelay)
		}
		if delayed {
			it = scheduleItem(it, at.Sub(now))
		}
		items[i] = it
	}
	return items, nil
}

// scheduleItem redirects an item to the delay level for remaining.
func scheduleItem(it item, remaining time.Duration) item {
	props := maps.Clone(it.msg.Properties)
	props[PropRealTopic] = it.topic
	props[PropRealQueue] = strconv.Itoa(int(it.queue))
	it.msg.Properties = props
	it.topic, it.queue = ScheduleTopic, int32(levelFor(remaining))
	return it
}

// appendItemsLocked assigns queue offsets, encodes and writes the items in
// one commitlog append, skipping those whose id is already stored. It does
// not wait for the fsync, so concurrent senders share one (group commit).
// The caller holds appendMu and has checked every item.
func (b *Broker) appendItemsLocked(items []item) (appended, error) {
	now := time.Now()
	out := appended{results: make([]SendResult, len(items))}
	recs := make([][]byte, 0, len(items))
	var pending queueCounts
	var seen map[string]int // dedupe key -> item stored in this batch
	b.mu.RLock()
	for i := range items {
		it := &items[i]
		key := ""
		if it.dedupe {
			key = dedupeScope(it.topic, it.real, it.msg.ID)
			dup, err := b.duplicateLocked(key, it, seen, &out, i)
			if err != nil {
				b.mu.RUnlock()
				return appended{}, err
			}
			if dup {
				continue
			}
		}
		if err := b.placeLocked(it, &pending, now); err != nil {
			b.mu.RUnlock()
			return appended{}, err
		}
		recs = append(recs, commitlog.AppendRecord(nil, &it.msg))
		out.results[i] = SendResult{ID: it.msg.ID, Topic: it.msg.Topic, QueueID: it.msg.QueueID, QueueOffset: it.msg.QueueOffset, StoreTime: now}
		if key != "" {
			if seen == nil {
				seen = map[string]int{}
			}
			seen[key] = i
		}
	}
	b.mu.RUnlock()
	if len(recs) == 0 {
		return out, nil
	}
	res, err := b.clog.Append(recs)
	if err != nil {
		return appended{}, fmt.Errorf("broker: append: %w", err)
	}
	for _, c := range pending {
		c.q.next += c.n
	}
	out.end, out.stored, out.bytes = max(out.end, res.End), len(recs), recsBytes(recs)
	for key, i := range seen {
		r := out.results[i]
		r.Duplicate = true
		b.ids.put(key, idPlacement{res: r, end: res.End, added: now})
	}
	b.ids.evict(now, b.dispatched.Load())
	return out, nil
}

// duplicateLocked reports whether item i is already stored (earlier in
// the batch, or before) and if so sets its result to the original's.
func (b *Broker) duplicateLocked(key string, it *item, seen map[string]int, out *appended, i int) (bool, error) {
	if j, ok := seen[key]; ok {
		out.results[i] = out.results[j]
		out.results[i].Duplicate = true
		return true, nil
	}
	p, dup, err := b.findDuplicate(it.topic, it.real, it.msg.ID)
	if err != nil || !dup {
		return false, err
	}
	out.results[i], out.end = p.res, max(out.end, p.end)
	return true, nil
}

// queueCounts counts the records a batch appends per queue (few queues).
type queueCounts []struct {
	q *queue
	n int64
}

func (c *queueCounts) add(q *queue) (before int64) {
	for i := range *c {
		if (*c)[i].q == q {
			(*c)[i].n++
			return (*c)[i].n - 1
		}
	}
	*c = append(*c, struct {
		q *queue
		n int64
	}{q, 1})
	return 0
}

// placeLocked gives an item its queue and offset (after the pending items
// of the same queue) and stamps the topic's epoch on records of fenced
// topics. The caller holds appendMu and mu (read).
func (b *Broker) placeLocked(it *item, pending *queueCounts, now time.Time) error {
	t, err := b.topicLocked(it.topic)
	if err != nil {
		return err
	}
	qid := uint32(it.queue)
	if it.queue < 0 {
		qid = b.rr.Add(1) % t.Queues
	} else if qid >= t.Queues {
		return fmt.Errorf("%w: queue %d of topic %q (it has queues 0..%d)", ErrInvalidQueue, it.queue, t.Name, t.Queues-1)
	}
	q := b.queues[queueKey{t.Name, qid}]
	m := &it.msg
	m.Topic, m.QueueID, m.QueueOffset, m.StoreTime = t.Name, qid, q.next+pending.add(q), now.UnixNano()
	if t.Name != ScheduleTopic {
		m.Epoch = t.Order.stamp(t.Epoch)
	}
	return nil
}

// appendInternal appends records the broker writes itself (deliveries of
// scheduled messages, retry and dead-letter copies): no permission or
// epoch checks, and it waits until they are durable. It refuses a topic
// this broker only copies (deliversTo): a record of its own there would
// diverge from its leader's.
func (b *Broker) appendInternal(items []item) ([]SendResult, error) {
	b.appendMu.Lock()
	if b.isClosed() {
		b.appendMu.Unlock()
		return nil, ErrClosed
	}
	for _, it := range items {
		if it.topic != ScheduleTopic && !b.deliversTo(it.topic) {
			b.appendMu.Unlock()
			return nil, fmt.Errorf("%w: broker %s only copies topic %q (a standby of its replica set, or a follower): it writes no record of its own there", ErrNotLeader, b.cfg.Name, it.topic)
		}
	}
	out, err := b.appendItemsLocked(items)
	b.appendMu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := b.clog.WaitDurable(b.stopCtx, out.end); err != nil {
		return nil, fmt.Errorf("broker: flush: %w", err)
	}
	return out.results, nil
}

func (b *Broker) writableQueue(req SendRequest) (TopicConfig, *queue, uint32, error) {
	if len(req.Messages) == 0 || len(req.Messages) > MaxBatch {
		return TopicConfig{}, nil, 0, fmt.Errorf("%w: a send carries 1 to %d messages, not %d", ErrInvalidArgument, MaxBatch, len(req.Messages))
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, err := b.topicLocked(req.Topic)
	if err != nil {
		return t, nil, 0, err
	}
	if !b.st.Perm.CanWrite() {
		return t, nil, 0, fmt.Errorf("%w: broker %s is %s", ErrWriteForbidden, b.cfg.Name, b.st.Perm)
	}
	if !t.Perm.CanWrite() {
		return t, nil, 0, fmt.Errorf("%w: topic %q is %s on broker %s", ErrWriteForbidden, t.Name, t.Perm, b.cfg.Name)
	}
	qid := uint32(req.QueueID)
	if req.QueueID < 0 {
		qid = b.rr.Add(1) % t.Queues
	} else if qid >= t.Queues {
		return t, nil, 0, fmt.Errorf("%w: queue %d of topic %q (it has queues 0..%d)", ErrInvalidQueue, req.QueueID, t.Name, t.Queues-1)
	}
	return t, b.queues[queueKey{t.Name, qid}], qid, nil
}

func (b *Broker) messageLimit(t TopicConfig) int64 {
	if t.MaxMessageBytes > 0 {
		return t.MaxMessageBytes
	}
	return b.cfg.MaxMessageBytes
}

func (b *Broker) toRecord(i int, in Message, topic string, qid uint32, off int64, now time.Time, limit int64) (commitlog.Message, error) {
	if int64(len(in.Body)) > limit {
		return commitlog.Message{}, &TooLargeError{Index: i, Size: len(in.Body), Limit: limit}
	}
	id := in.ID
	if id == "" {
		id = msgid.New()
	} else if !msgid.Valid(id) {
		return commitlog.Message{}, fmt.Errorf("%w: message %d: id must be 1 to 128 printable ASCII characters", ErrInvalidArgument, i)
	}
	born := in.BornTime
	if born.IsZero() {
		born = now
	}
	dc := in.BornDC
	if dc == "" {
		dc = b.cfg.DC
	}
	m := commitlog.Message{
		Topic: topic, QueueID: qid, QueueOffset: off, Flags: in.Flags,
		BornTime: born.UnixNano(), StoreTime: now.UnixNano(), BornDC: dc,
		ID: id, Keys: in.Keys, Tag: in.Tag, ShardingKey: in.ShardingKey,
		Properties: in.Properties, Body: in.Body,
	}
	// Room for the properties a schedule hop or a retry copy adds.
	if h := commitlog.EncodedSize(&m) - len(in.Body); h > maxHeaderBytes-reservedHeaderBytes {
		return m, fmt.Errorf("%w: message %d: keys, tag and properties take %d bytes, over %d", ErrInvalidArgument, i, h, maxHeaderBytes-reservedHeaderBytes)
	}
	return m, nil
}

// reservedHeaderBytes is kept free in a record's header for the properties
// the broker adds to schedule records and retry copies.
const reservedHeaderBytes = 1 << 10

func recsBytes(recs [][]byte) int {
	n := 0
	for _, r := range recs {
		n += len(r)
	}
	return n
}
