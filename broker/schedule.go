package broker

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/internal/logging"
)

// Delayed delivery.
//
// A message whose PropDeliverAt (unix nanoseconds) lies in the future is
// stored in ScheduleTopic, in the queue of the largest delay level not
// beyond its remaining delay (level 0 when it is shorter than every level),
// with PropRealTopic and PropRealQueue naming its destination. Each level
// is a FIFO: records enter it in store-time order and all wait about the
// same time, so one goroutine per level only looks at its first records.
//
// A record is due at its hop time (store time + level), or at its deliver
// time when that comes less than the smallest level after the hop time (or
// after now, for a hop handled late). When due, it is delivered to its real
// topic if its deliver time has come, or else moved to the level for the
// remaining delay: a delay is never undershot, and overshot by at most the
// smallest level plus the scheduler's wake-up. Deliveries keep the
// message's id and are idempotent on the real topic, and a level's progress
// is the offset of SchedulerGroup, committed only after its deliveries and
// moves are durable: a crash in between delivers again, and the id check
// stores it once. Moves are not deduplicated; a move repeated after a
// crash yields two schedule records whose deliveries are deduplicated the
// same way. Offsets are persisted at checkpoints, so after a restart every
// level resumes where it was.
//
// The scheduler writes past permissions and fencing: a delayed message was
// accepted (and checked) when it was sent, and its delivery carries the
// real topic's current epoch.

// DelayLevels are the delays of ScheduleTopic's queues, shortest first.
var DelayLevels = []time.Duration{
	100 * time.Millisecond, time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// scheduleBatch bounds the records one level reads per pass.
const scheduleBatch = 256

// levelFor is the largest level not beyond remaining (0 if none is).
func levelFor(remaining time.Duration) int {
	l := 0
	for i, d := range DelayLevels {
		if d <= remaining {
			l = i
		}
	}
	return l
}

// deliverAt parses PropDeliverAt; delayed reports a time after now.
func deliverAt(props map[string]string, now time.Time) (at time.Time, delayed bool, err error) {
	v, ok := props[PropDeliverAt]
	if !ok {
		return time.Time{}, false, nil
	}
	ns, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%s %q is not unix nanoseconds", PropDeliverAt, v)
	}
	at = time.Unix(0, ns)
	return at, at.After(now), nil
}

// ensureScheduleFor creates the schedule topic before the first delayed
// message is appended.
func (b *Broker) ensureScheduleFor(msgs []Message) error {
	now := time.Now()
	for _, m := range msgs {
		if _, delayed, _ := deliverAt(m.Properties, now); delayed {
			return b.ensureTopic(ScheduleTopic, uint32(len(DelayLevels)))
		}
	}
	return nil
}

// signalSchedule wakes the scheduler of a level (called by the dispatcher
// when it adds a record to the level's queue).
func (b *Broker) signalSchedule(level uint32) {
	if int(level) < len(b.schedWake) {
		select {
		case b.schedWake[level] <- struct{}{}:
		default:
		}
	}
}

// levelState is one level's scheduler position: off is the committed
// offset (-1: not loaded yet), handled the records at or past off already
// delivered or moved out of order.
type levelState struct {
	level   int
	off     int64
	handled map[int64]bool
}

// runLevel is the scheduler of one delay level.
func (b *Broker) runLevel(level int) {
	ls := &levelState{level: level, off: -1, handled: map[int64]bool{}}
	for {
		n, wait, err := b.scheduleOnce(ls)
		if errors.Is(err, ErrClosed) || b.isClosed() {
			return
		}
		if err != nil {
			b.log.Error("scheduler failed, will retry", "level", DelayLevels[level], "offset", ls.off, "err", err)
			wait = time.Second
		}
		if n > 0 && err == nil {
			continue
		}
		if !b.waitSchedule(level, wait) {
			return
		}
	}
}

// waitSchedule waits for the level's signal or wait (0: no timeout).
func (b *Broker) waitSchedule(level int, wait time.Duration) bool {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-b.schedWake[level]:
	case <-timeout:
	case <-b.closed:
		return false
	}
	return true
}

// scheduleOnce handles the level's due records. It returns how many it
// handled, and how long until the next is due (0: none is known).
func (b *Broker) scheduleOnce(ls *levelState) (int, time.Duration, error) {
	due, offs, wait, err := b.dueRecords(ls)
	if err != nil || len(due) == 0 {
		return 0, wait, err
	}
	now := time.Now()
	var items []item
	var handled []int64
	for i, m := range due {
		it, ok := b.scheduledItem(m, now)
		if ok && it.topic != ScheduleTopic && !b.deliversTo(it.topic) {
			// A standby or follower copy takes only its leader's records:
			// hold this one until this broker leads the topic again (the
			// level's committed offset stays below it meanwhile).
			wait = minWait(wait, scheduleHoldRetry)
			continue
		}
		if ok {
			items = append(items, it)
		}
		handled = append(handled, offs[i])
	}
	if len(handled) == 0 {
		return 0, wait, nil
	}
	offs = handled
	if len(items) > 0 {
		if _, err := b.appendInternal(items); err != nil {
			return 0, 0, err
		}
	}
	for _, o := range offs {
		ls.handled[o] = true
	}
	for ls.handled[ls.off] {
		delete(ls.handled, ls.off)
		ls.off++
	}
	b.offs.Commit(SchedulerGroup, ScheduleTopic, uint32(ls.level), ls.off)
	b.metrics.scheduled.Add(float64(len(offs)))
	return len(offs), 0, nil
}

// scheduleHoldRetry is how often a delivery held back (deliversTo) is
// tried again.
const scheduleHoldRetry = time.Second

// deliversTo reports whether scheduled deliveries may be appended to
// topic here: not while this broker only copies it (a standby of its
// replica set, or a follower of an ordered topic led by another DC).
func (b *Broker) deliversTo(topic string) bool {
	t, err := b.Topic(topic)
	if err != nil {
		return true // scheduledItem dropped it already if it is gone
	}
	return !consumedElsewhere(t, b.cfg.DC) && !t.Order.Standby
}

// dueRecords reads the level's records from its committed offset and
// returns those due now, with their offsets, or the wait until one is.
// Records are in store-time order and none is due before its store time
// plus the level minus the smallest level, so the scan stops at the first
// record that cannot be due yet: it looks past the head only at records
// that may be due within the smallest level, which keeps a head due a
// little later from holding back one due now.
func (b *Broker) dueRecords(ls *levelState) ([]commitlog.Message, []int64, time.Duration, error) {
	qid := uint32(ls.level)
	cq, err := b.queueOf(ScheduleTopic, qid)
	if errors.Is(err, ErrUnknownTopic) {
		return nil, nil, 0, nil // no delayed message yet
	}
	if err != nil {
		return nil, nil, 0, err
	}
	if ls.off < 0 {
		ls.off, _ = b.offs.Get(SchedulerGroup, ScheduleTopic, qid)
	}
	if lo, hi := cq.MinOffset(), cq.MaxOffset(); ls.off < lo || ls.off > hi {
		ls.off, ls.handled = min(max(ls.off, lo), hi), map[int64]bool{}
	}
	entries, err := cq.Range(ls.off, scheduleBatch, nil)
	if err != nil {
		return nil, nil, 0, b.mapQueueErr(err, ScheduleTopic, qid, ls.off)
	}
	var due []commitlog.Message
	var offs []int64
	var wait time.Duration
	now := time.Now()
	earliest := DelayLevels[ls.level] - DelayLevels[0]
	for i, e := range entries {
		off := ls.off + int64(i)
		if ls.handled[off] {
			continue
		}
		m, err := b.readEntry(e, ScheduleTopic, qid)
		if err != nil {
			return nil, nil, 0, err
		}
		at := dueTime(&m, ls.level, now)
		if at.After(now) {
			wait = minWait(wait, at.Sub(now))
			if time.Unix(0, m.StoreTime).Add(earliest).After(now) {
				break
			}
			continue
		}
		due, offs = append(due, m), append(offs, off)
	}
	return due, offs, wait, nil
}

func minWait(a, b time.Duration) time.Duration {
	if a == 0 || b < a {
		return b
	}
	return a
}

// dueTime is when a schedule record needs handling (see the file comment):
// its hop time, or its deliver time when that is less than the smallest
// level past the hop time or past now.
func dueTime(m *commitlog.Message, level int, now time.Time) time.Time {
	hop := time.Unix(0, m.StoreTime).Add(DelayLevels[level])
	at, _, err := deliverAt(m.Properties, hop)
	switch {
	case err != nil:
		return hop // malformed: dropped when handled
	case at.Before(hop.Add(DelayLevels[0])):
		return at
	case now.Before(hop) || at.Sub(now) >= DelayLevels[0]:
		return hop
	}
	return at
}

// scheduledItem is a due record's next step: its delivery or a move. A
// record that cannot be delivered (no real topic any more, malformed) is
// logged and dropped.
func (b *Broker) scheduledItem(m commitlog.Message, now time.Time) (item, bool) {
	real := m.Properties[PropRealTopic]
	at, _, err := deliverAt(m.Properties, now)
	queue, qerr := strconv.ParseInt(m.Properties[PropRealQueue], 10, 32)
	if err != nil || qerr != nil || real == "" {
		b.log.Error("dropping malformed schedule record", logging.KeyTraceID, m.ID, "queue", m.QueueID, "offset", m.QueueOffset)
		return item{}, false
	}
	if at.After(now) { // never early: hop on, to level 0 when little is left
		return item{topic: ScheduleTopic, queue: int32(levelFor(at.Sub(now))), real: real, msg: m}, true
	}
	if _, err := b.Topic(real); err != nil {
		b.log.Warn("dropping delayed message: its topic is gone", logging.KeyTraceID, m.ID, "topic", real, "err", err)
		return item{}, false
	}
	m.Properties = maps.Clone(m.Properties)
	delete(m.Properties, PropRealTopic)
	delete(m.Properties, PropRealQueue)
	return item{topic: real, queue: int32(queue), real: real, msg: m, dedupe: true}, true
}
