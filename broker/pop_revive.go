package broker

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/internal/names"
)

// reviveBatch bounds the copies written by one append.
const reviveBatch = 256

// reviveJob is one expired message to copy to the retry or dead-letter topic.
type reviveJob struct {
	off     int64
	gen     uint64
	attempt int
	dlq     bool
	nack    bool
}

// reviveLoop looks for expired pops every pop-revive-interval.
func (b *Broker) reviveLoop() {
	t := time.NewTicker(b.cfg.PopReviveInterval)
	defer t.Stop()
	for {
		select {
		case <-b.closed:
			return
		case now := <-t.C:
			for _, pq := range b.popSnapshot() {
				b.revive(pq, now)
			}
		}
	}
}

// retryBackoff is the wait after the attempt-th delivery expired.
func (b *Broker) retryBackoff(attempt int) time.Duration {
	bo := b.cfg.RetryBackoff
	return bo[min(max(attempt, 1), len(bo))-1]
}

// revive handles the queue's expired messages: ordered ones start their
// backoff, the others (and ordered ones out of attempts) are copied to the
// retry or dead-letter topic and then settled.
func (b *Broker) revive(pq *popQueue, now time.Time) {
	pq.mu.Lock()
	jobs := b.expire(pq, now)
	pq.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	var done []bool
	for chunk := range slices.Chunk(jobs, reviveBatch) {
		done = append(done, b.writeCopies(pq.key, chunk, now)...)
	}
	pq.mu.Lock()
	defer pq.mu.Unlock()
	for i, j := range jobs {
		e := pq.inflight[j.off]
		if e == nil || e.gen != j.gen {
			continue
		}
		if done[i] {
			pq.settle(j.off)
			continue
		}
		e.reviving = false // try again at the next pass
		pq.lowerNextDue(now)
	}
	b.commitPop(pq)
}

// expire marks the queue's expired messages. The caller holds pq.mu.
func (b *Broker) expire(pq *popQueue, now time.Time) []reviveJob {
	if pq.dropped || pq.nextDue.IsZero() || now.Before(pq.nextDue) {
		return nil
	}
	var jobs []reviveJob
	var next time.Time
	for off, e := range pq.inflight {
		if e.reviving || e.waiting {
			continue
		}
		if now.Before(e.invisibleUntil) {
			if next.IsZero() || e.invisibleUntil.Before(next) {
				next = e.invisibleUntil
			}
			continue
		}
		dlq := e.attempt >= e.maxAttempts
		if e.ordered && !dlq {
			e.waiting = true
			if !e.nack {
				e.invisibleUntil = e.invisibleUntil.Add(b.retryBackoff(e.attempt))
			}
			continue
		}
		e.reviving, e.gen = true, b.newGen()
		jobs = append(jobs, reviveJob{off: off, gen: e.gen, attempt: e.attempt, dlq: dlq, nack: e.nack})
	}
	pq.nextDue = next
	slices.SortFunc(jobs, func(x, y reviveJob) int { return cmp.Compare(x.off, y.off) })
	return jobs
}

// writeCopies writes the jobs' copies in one durable append and reports
// which jobs are done (copied, or impossible to copy because the original
// is gone).
func (b *Broker) writeCopies(k popKey, jobs []reviveJob, now time.Time) []bool {
	done := make([]bool, len(jobs))
	cq, err := b.queueOf(k.topic, k.queue)
	if err != nil {
		b.log.Warn("dropping expired pops of a queue that is gone", "group", k.group, "topic", k.topic, "queue", k.queue, "err", err)
		return slices.Repeat([]bool{true}, len(jobs))
	}
	var items []item
	var idx []int
	for i, j := range jobs {
		m, err := b.readOffset(cq, k.topic, k.queue, j.off)
		if errors.Is(err, ErrOffsetOutOfRange) || errors.Is(err, ErrCorruption) {
			b.log.Error("cannot redeliver popped message", "group", k.group, "topic", k.topic, "queue", k.queue, "offset", j.off, "err", err)
			done[i] = true
			continue
		}
		if err != nil {
			b.log.Error("reading popped message for redelivery failed", "group", k.group, "topic", k.topic, "offset", j.off, "err", err)
			continue
		}
		delay := b.retryBackoff(j.attempt)
		if j.nack {
			delay = 0
		}
		items = append(items, retryCopy(m, k.group, j.attempt, j.dlq, delay, now))
		idx = append(idx, i)
	}
	if len(items) == 0 || b.ensureCopyTopics(items) != nil {
		return done
	}
	if _, err := b.appendInternal(items); err != nil {
		if !errors.Is(err, ErrClosed) {
			b.log.Error("writing retry copies failed", "group", k.group, "topic", k.topic, "err", err)
		}
		return done
	}
	for n, i := range idx {
		done[i] = true
		if items[n].real == names.DLQTopic(k.group) {
			b.metrics.deadLettered.Inc()
		} else {
			b.metrics.retried.Inc()
		}
	}
	return done
}

// ensureCopyTopics creates the system topics the copies go to.
func (b *Broker) ensureCopyTopics(items []item) error {
	for _, it := range items {
		err := b.ensureTopic(it.real, 1)
		if err == nil && it.topic == ScheduleTopic {
			err = b.ensureTopic(ScheduleTopic, uint32(len(DelayLevels)))
		}
		if err != nil {
			b.log.Error("creating system topic failed", "topic", it.real, "err", err)
			return err
		}
	}
	return nil
}

// retryCopy is the copy of a popped message after its attempt-th delivery
// expired: to the group's dead-letter topic, or to its retry topic due
// after delay.
func retryCopy(m commitlog.Message, group string, attempt int, dlq bool, delay time.Duration, now time.Time) item {
	props := maps.Clone(m.Properties)
	if props == nil {
		props = map[string]string{}
	}
	if _, ok := props[PropOriginID]; !ok {
		props[PropOriginTopic], props[PropOriginID] = m.Topic, m.ID
		props[PropOriginQueue] = strconv.FormatUint(uint64(m.QueueID), 10)
		props[PropOriginOffset] = strconv.FormatInt(m.QueueOffset, 10)
	}
	props[PropReconsumeTimes] = strconv.Itoa(attempt)
	delete(props, PropDeliverAt)
	c := commitlog.Message{
		ID: props[PropOriginID] + ":" + strconv.Itoa(attempt+1), Keys: m.Keys, Tag: m.Tag,
		ShardingKey: m.ShardingKey, Properties: props, Body: m.Body, BornTime: m.BornTime,
		BornDC: m.BornDC, Flags: m.Flags,
	}
	dest := names.RetryTopic(group)
	if dlq {
		dest = names.DLQTopic(group)
	}
	it := item{topic: dest, real: dest, msg: c, dedupe: true}
	if dlq || delay <= 0 {
		return it
	}
	props[PropDeliverAt] = strconv.FormatInt(now.Add(delay).UnixNano(), 10)
	return scheduleItem(it, delay)
}
