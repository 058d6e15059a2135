package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/consumequeue"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/names"
)

// Message-level consumption (pop, ack, invisibility), as RocketMQ 5's POP.
//
// A consumer group pops messages of a queue; each popped message is
// invisible to the group's other pops until its deadline, and is settled by
// an Ack. The broker keeps, per (group, topic, queue), in memory:
//
//   - committed: the group's offset, persisted through the offsets store
//     (memory at once, disk at the next checkpoint);
//   - next: the next offset to hand out;
//   - in-flight: popped, unsettled messages by offset, each with its
//     attempt (deliveries so far, counting those of earlier retry copies),
//     invisible-until and a receipt generation.
//
// # Invariants
//
//   - committed <= every in-flight offset < next, and every offset in
//     [committed, next) that is not in flight is settled (acked, copied to
//     the retry or dead-letter topic, or filtered out by tag). committed is
//     therefore the smallest in-flight offset, or next when none is: it
//     moves over the contiguous settled prefix only, so a restart never
//     skips an unsettled message.
//   - A message is handed out by at most one pop at a time: a pop takes
//     offsets from next (under the queue's lock), and an in-flight message
//     is handed out again only by an ordered pop after it expired.
//   - A receipt handle names (broker, topic, queue, offset, generation).
//     Generations come from one broker-wide counter that starts at the
//     wall clock in nanoseconds, so they are never reused, even across
//     restarts. A pop, a redelivery, ChangeInvisibleDuration and the start
//     of a revival each give the message a new generation, which makes
//     every older receipt stale (ErrStaleReceipt).
//   - Unordered groups: when a message's invisibility ends, the reviver
//     writes a copy to %RETRY%<group> (through the schedule topic, due
//     after RetryBackoff[attempt-1]; at once after a negative ack, i.e.
//     ChangeInvisibleDuration 0), or to %DLQ%<group> once attempt reaches
//     the pop's max attempts, and only after the copy is durable counts
//     the original as settled. The copy's id is "<origin id>:<attempt>" and
//     it is written idempotently, so a revival repeated after a restart is
//     stored once. It carries PropOriginTopic, PropOriginID,
//     PropOriginQueue, PropOriginOffset and PropReconsumeTimes (the
//     deliveries so far).
//   - Ordered groups: a queue has at most one batch in flight; a pop
//     returns nothing from a queue while any of its in-flight messages is
//     invisible. An expired message waits RetryBackoff[attempt-1] and is
//     then delivered again in place (same offset, attempt+1) ahead of any
//     newer message; once attempt reaches max attempts it is copied to the
//     dead-letter topic and the queue moves on.
//   - A commit of the group's offset (CommitOffset) resets its pop state of
//     the queue; deleting the topic drops it.
//
// In-flight state is not persisted: after a restart the messages after the
// committed offset are popped again, and old receipts are stale. Delivery
// is at least once.
//
// Lock order: popMu, then a popQueue's mu, then appendMu, then mu.

// InitialPosition is where a group with no committed offset starts.
type InitialPosition int

// Initial positions (the values of brokerpb.InitialPosition).
const (
	InitialLatest InitialPosition = iota
	InitialEarliest
	InitialTimestamp
)

// PopRequest pops messages for a consumer group.
type PopRequest struct {
	Group string
	Topic string
	// QueueID is the queue; -1: any queue of the topic on this broker,
	// starting at a different one each time.
	QueueID int32
	// MaxMessages bounds the batch (0: DefaultPullMessages).
	MaxMessages int
	// Invisible is how long popped messages stay invisible (0: DefaultInvisible).
	Invisible time.Duration
	// Wait is how long to long-poll when nothing is available.
	Wait time.Duration
	// Tags filters by tag (empty: all). Filtered messages count as settled.
	Tags []string
	// Ordered: one batch in flight per queue, redelivery in place.
	Ordered bool
	// InitialPosition and InitialTime apply to a group with no committed
	// offset on the queue; system topics always start at the earliest.
	InitialPosition InitialPosition
	InitialTime     time.Time
	// MaxAttempts is the deliveries before the dead-letter topic (0: DefaultMaxAttempts).
	MaxAttempts int
	// PopID names the pop for ReleasePop ("": not releasable).
	PopID string
}

// PoppedMessage is one popped message.
type PoppedMessage struct {
	Message        commitlog.Message
	ReceiptHandle  string
	Attempt        int // 1 for the first delivery
	InvisibleUntil time.Time
}

// Pop limits and defaults.
const (
	DefaultInvisible   = 30 * time.Second
	MaxInvisible       = 12 * time.Hour
	DefaultMaxAttempts = 17 // the first delivery and 16 retries
	MaxMaxAttempts     = 1000
	// maxInflightPerQueue bounds a group's unsettled messages of one queue;
	// pops skip a queue at the limit.
	maxInflightPerQueue = 65536
)

// Pop hands out up to MaxMessages messages of a topic's queue (or of any
// of its queues) to a consumer group, invisible to the group's other pops
// until acked or until Invisible passes. With nothing to hand out it
// long-polls up to Wait (capped by max-pull-wait); an empty result is not
// an error.
func (b *Broker) Pop(ctx context.Context, req PopRequest) ([]PoppedMessage, error) {
	req, err := b.checkPop(req)
	if err != nil {
		return nil, err
	}
	qids, err := b.popQueueIDs(req)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(min(req.Wait, b.cfg.MaxPullWait))
	for {
		wake := b.waitDispatch()
		out, retryAt, err := b.popOnce(req, qids)
		if len(out) > 0 && ctx.Err() != nil {
			// The caller gave up (a proxy's long poll cancelled once another
			// answered): the reply would be lost with the messages invisible
			// until their deadline. Hand them back for redelivery at once.
			b.handBack(ctx, req, out)
			return nil, ctx.Err()
		}
		if err != nil || len(out) > 0 || !time.Now().Before(deadline) {
			if len(out) > 0 && req.PopID != "" {
				b.recentPops.add(req.PopID, req.Group, out)
			}
			return out, err
		}
		if retryAt.Equal(popAgain) {
			continue
		}
		if !retryAt.IsZero() && retryAt.Before(deadline) {
			if !b.awaitUntil(ctx, wake, retryAt) {
				return nil, nil
			}
			continue
		}
		if !b.awaitUntil(ctx, wake, deadline) {
			return nil, nil
		}
	}
}

// handBack nacks popped messages whose pop will not reach the consumer.
// ctx (ended) only carries the caller's trace id, if any.
func (b *Broker) handBack(ctx context.Context, req PopRequest, out []PoppedMessage) {
	for _, m := range out {
		if _, err := b.ChangeInvisibleDuration(req.Group, m.Message.Topic, m.ReceiptHandle, 0); err != nil {
			b.log.WarnContext(logging.OrTraceID(ctx, m.Message.ID), "popped message not handed back; it returns when its invisibility ends",
				"group", req.Group, "topic", m.Message.Topic, "offset", m.Message.QueueOffset, "err", err)
		}
	}
}

// awaitUntil waits for wake or the time t; false means ctx ended or the
// broker closed.
func (b *Broker) awaitUntil(ctx context.Context, wake <-chan struct{}, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-wake:
	case <-timer.C:
	case <-ctx.Done():
		return false
	case <-b.closed:
		return false
	}
	return true
}

// checkPop validates a pop and fills in defaults.
func (b *Broker) checkPop(req PopRequest) (PopRequest, error) {
	if b.isClosed() {
		return req, ErrClosed
	}
	if err := names.Group(req.Group); err != nil {
		return req, fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	req.MaxMessages = cmp.Or(req.MaxMessages, DefaultPullMessages)
	req.Invisible = cmp.Or(req.Invisible, DefaultInvisible)
	req.MaxAttempts = cmp.Or(req.MaxAttempts, DefaultMaxAttempts)
	checks := []struct {
		bad bool
		msg string
	}{
		{req.Topic == ScheduleTopic, fmt.Sprintf("%s is internal and cannot be popped", ScheduleTopic)},
		{req.QueueID < -1, fmt.Sprintf("queue id %d (use -1 for any queue)", req.QueueID)},
		{req.MaxMessages < 0 || req.MaxMessages > MaxPullMessages, fmt.Sprintf("max messages %d not in [1, %d]", req.MaxMessages, MaxPullMessages)},
		{req.Invisible < 0 || req.Invisible > MaxInvisible, fmt.Sprintf("invisible duration %v not in (0, %v]", req.Invisible, MaxInvisible)},
		{req.Wait < 0, fmt.Sprintf("wait %v is negative", req.Wait)},
		{req.MaxAttempts < 0 || req.MaxAttempts > MaxMaxAttempts, fmt.Sprintf("max attempts %d not in [1, %d]", req.MaxAttempts, MaxMaxAttempts)},
		{req.InitialPosition < InitialLatest || req.InitialPosition > InitialTimestamp, fmt.Sprintf("initial position %d is not LATEST, EARLIEST or TIMESTAMP", req.InitialPosition)},
	}
	for _, c := range checks {
		if c.bad {
			return req, fmt.Errorf("%w: pop: %s", ErrInvalidArgument, c.msg)
		}
	}
	return req, nil
}

// popQueueIDs resolves the queues to pop from, in the order to try them,
// and creates the group's retry topic on first need.
func (b *Broker) popQueueIDs(req PopRequest) ([]uint32, error) {
	retry := names.RetryTopic(req.Group)
	t, err := b.Topic(req.Topic)
	if errors.Is(err, ErrUnknownTopic) && req.Topic == retry {
		if err = b.ensureTopic(retry, 1); err == nil {
			t, err = b.Topic(req.Topic)
		}
	}
	if err != nil {
		return nil, err
	}
	if !req.Ordered && !isSystemTopic(t.Name) {
		if err := b.ensureTopic(retry, 1); err != nil {
			return nil, err
		}
	}
	if req.QueueID >= 0 {
		if uint32(req.QueueID) >= t.Queues {
			return nil, fmt.Errorf("%w: queue %d of topic %q (it has queues 0..%d)", ErrInvalidQueue, req.QueueID, t.Name, t.Queues-1)
		}
		return []uint32{uint32(req.QueueID)}, nil
	}
	start := b.rr.Add(1) % t.Queues
	ids := make([]uint32, t.Queues)
	for i := range ids {
		ids[i] = (start + uint32(i)) % t.Queues
	}
	return ids, nil
}

// popAgain is popQueue's retry time after it skipped filtered messages
// only: look again at once rather than wait for a new message.
var popAgain = time.Unix(0, 1)

// popOnce tries each queue in turn until the batch is full. retryAt is the
// earliest time a blocked ordered queue may have something (zero: none).
func (b *Broker) popOnce(req PopRequest, qids []uint32) ([]PoppedMessage, time.Time, error) {
	if err := b.popLeading(req.Topic); err != nil {
		return nil, time.Time{}, err
	}
	var out []PoppedMessage
	var retryAt time.Time
	for _, qid := range qids {
		want := req.MaxMessages - len(out)
		if want <= 0 {
			break
		}
		got, at, err := b.popQueue(req, qid, want)
		if err != nil {
			if len(out) > 0 {
				break // hand out what is popped already; the error comes again
			}
			return nil, time.Time{}, err
		}
		out = append(out, got...)
		if !at.IsZero() && (retryAt.IsZero() || at.Before(retryAt)) {
			retryAt = at
		}
	}
	b.metrics.popped.Add(float64(len(out)))
	return out, retryAt, nil
}

// popLeading refuses pops of an ordered topic this broker's DC does not
// lead (a follower copy, or a blocked primary): its consumers read the
// primary, and pop state here would be stale once the topic moved, holding
// back the consumer offsets synced from the primary (SyncConsumerOffsets
// leaves queues with pop state alone). A mirror of another DC's unordered
// topic is led by that DC too but is read here while it is down: mirrors
// are not refused.
func (b *Broker) popLeading(topic string) error {
	t, err := b.Topic(topic)
	if err != nil {
		return err
	}
	if consumedElsewhere(t, b.cfg.DC) {
		return fmt.Errorf("%w: topic %q is consumed in its primary %s (epoch %d, blocked %v)", ErrNotLeader, topic, t.Order.Primary, t.Epoch, t.Order.Blocked)
	}
	return nil
}

// consumedElsewhere: t is an ordered topic (not a mirror) that dc does not
// lead.
func consumedElsewhere(t TopicConfig, dc string) bool {
	if _, _, mirror := names.ParseMirror(t.Name); mirror {
		return false
	}
	return (t.Epoch > 0 || t.Order.Standby) && !t.Order.leads(dc)
}

// popQueue pops up to want messages of one queue.
func (b *Broker) popQueue(req PopRequest, qid uint32, want int) ([]PoppedMessage, time.Time, error) {
	k := popKey{req.Group, req.Topic, qid}
	b.revive(b.popState(k), time.Now())
	pq := b.lockedPopState(k)
	defer pq.mu.Unlock()
	if err := b.syncPopState(pq, req); err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	var out []PoppedMessage
	if req.Ordered {
		ready, until := pq.orderedReady(now)
		if !until.IsZero() {
			return nil, until, nil
		}
		var all bool
		var err error
		if out, all, err = b.redeliver(pq, req, ready, want, now); !all || err != nil {
			return out, time.Time{}, err // older messages still wait: nothing newer
		}
	}
	if len(out) >= want || len(pq.inflight) >= maxInflightPerQueue {
		return out, time.Time{}, nil
	}
	res, err := b.pullOnce(PullRequest{Topic: req.Topic, QueueID: qid, Offset: pq.next, MaxMessages: want - len(out),
		MaxBytes: DefaultPullBytes, Tags: req.Tags})
	if err != nil && len(out) > 0 {
		return out, time.Time{}, nil // hand out the redelivered ones; the error comes again
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, m := range res.Messages {
		e := &inflight{gen: b.newGen(), attempt: reconsumeTimes(&m) + 1, maxAttempts: req.MaxAttempts,
			invisibleUntil: now.Add(req.Invisible), ordered: req.Ordered}
		pq.add(m.QueueOffset, e)
		out = append(out, b.popped(m, k, e))
	}
	again := time.Time{}
	if len(res.Messages) == 0 && res.NextOffset > pq.next {
		again = popAgain
	}
	pq.next = res.NextOffset
	b.commitPop(pq)
	return out, again, nil
}

// redeliver hands out again, in offset order, up to want of the ordered
// queue's expired messages whose backoff has passed; all reports that none
// of them is left. On an error after some were handed out, it returns those.
func (b *Broker) redeliver(pq *popQueue, req PopRequest, ready []int64, want int, now time.Time) (out []PoppedMessage, all bool, err error) {
	if len(ready) == 0 {
		return nil, true, nil
	}
	cq, err := b.readableQueue(req.Topic, pq.key.queue)
	if err != nil {
		return nil, false, err
	}
	defer b.commitPop(pq)
	for _, off := range ready {
		if len(out) == want {
			return out, false, nil
		}
		m, err := b.readOffset(cq, req.Topic, pq.key.queue, off)
		if errors.Is(err, ErrOffsetOutOfRange) {
			pq.settle(off) // removed by retention
			continue
		}
		if err != nil && len(out) > 0 {
			return out, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		e := pq.inflight[off]
		e.attempt++
		e.gen, e.invisibleUntil, e.maxAttempts = b.newGen(), now.Add(req.Invisible), req.MaxAttempts
		e.waiting, e.nack = false, false
		pq.lowerNextDue(e.invisibleUntil)
		out = append(out, b.popped(m, pq.key, e))
	}
	return out, true, nil
}

func (b *Broker) popped(m commitlog.Message, k popKey, e *inflight) PoppedMessage {
	r := receipt{broker: b.cfg.Name, topic: k.topic, queue: k.queue, offset: m.QueueOffset, gen: e.gen}
	return PoppedMessage{Message: m, ReceiptHandle: r.String(), Attempt: e.attempt, InvisibleUntil: e.invisibleUntil}
}

// readOffset reads the message at a queue offset.
func (b *Broker) readOffset(cq *consumequeue.Queue, topic string, qid uint32, off int64) (commitlog.Message, error) {
	e, err := cq.Get(off)
	if err != nil {
		return commitlog.Message{}, b.mapQueueErr(err, topic, qid, off)
	}
	return b.readEntry(e, topic, qid)
}
