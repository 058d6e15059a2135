package broker

import (
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/consumequeue"
)

// dispatchBatchBytes bounds one pass of the dispatcher.
const dispatchBatchBytes = 4 << 20

// dispatchLoop builds consume-queue and index entries from the commitlog as
// it becomes readable: durable under sync flush (so a consumer never sees a
// message that a crash could take back), written under async flush.
func (b *Broker) dispatchLoop() {
	for {
		changed := b.clog.Changed()
		limit := b.readableLimit()
		if b.dispatched.Load() < limit {
			if _, err := b.dispatchOnce(limit); err != nil {
				b.log.Error("dispatch failed", "pos", b.dispatched.Load(), "err", err)
				if !b.sleep(100 * time.Millisecond) {
					return
				}
			}
			continue
		}
		select {
		case <-changed:
		case <-b.closed:
			return
		}
	}
}

func (b *Broker) readableLimit() int64 {
	if b.cfg.FlushMode == FlushSync {
		return b.clog.DurablePos()
	}
	return b.clog.WrittenPos()
}

func (b *Broker) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-b.closed:
		return false
	}
}

// dispatchOnce dispatches records from the current position up to limit
// (at most dispatchBatchBytes) and wakes long-polling readers. It returns
// the number of bytes consumed. Only one goroutine dispatches at a time.
func (b *Broker) dispatchOnce(limit int64) (int64, error) {
	from := b.dispatched.Load()
	b.mu.RLock()
	next, err := b.clog.Scan(from, limit, dispatchBatchBytes, b.dispatchRecord)
	b.mu.RUnlock()
	if next > from {
		b.dispatched.Store(next)
		b.wake()
	}
	return next - from, err
}

// dispatchRecord adds one record to its consume queue and the index. A
// record whose topic or queue no longer exists (deleted topic) or whose
// offset is not the queue's next (already dispatched) is skipped.
func (b *Broker) dispatchRecord(pos int64, rec []byte) error {
	m, _, err := commitlog.DecodeRecord(rec)
	if err != nil {
		return err
	}
	q, ok := b.queues[queueKey{m.Topic, m.QueueID}]
	if !ok {
		b.metrics.dispatchSkipped.Inc()
		return nil
	}
	if m.Flags&commitlog.FlagTruncate != 0 {
		if m.QueueOffset < q.cq.MaxOffset() {
			return q.cq.TruncateTo(m.QueueOffset)
		}
		return nil
	}
	e := consumequeue.Entry{Pos: pos, Size: int32(len(rec)), TagHash: consumequeue.TagHash(m.Tag)}
	placed, err := b.dispatchEntry(q, &m, e, pos)
	if err != nil || !placed {
		return err
	}
	if m.Topic == ScheduleTopic {
		b.signalSchedule(m.QueueID)
	}
	if err := b.idx.Add(idKey(m.ID), pos, m.StoreTime); err != nil {
		return err
	}
	for _, k := range m.Keys {
		if err := b.idx.Add(keyKey(m.Topic, k), pos, m.StoreTime); err != nil {
			return err
		}
	}
	return nil
}

// dispatchEntry puts e at the record's queue offset. An offset below the
// queue's max happens while re-dispatching after a crash: a matching entry
// is left alone, and a different or unreadable one (a slot torn by a power
// loss; queue slots carry no checksum) is cut off with everything after it
// and rewritten. An offset above the max (a gap: records of a deleted topic
// re-dispatched into one recreated with the same name) is skipped.
// placed reports whether the queue now holds e at the record's offset (so
// its id and keys belong in the index).
func (b *Broker) dispatchEntry(q *queue, m *commitlog.Message, e consumequeue.Entry, pos int64) (placed bool, err error) {
	max := q.cq.MaxOffset()
	if m.QueueOffset < max {
		if old, err := q.cq.Get(m.QueueOffset); err == nil && old == e {
			return true, nil
		}
		b.log.Warn("rewriting consume queue entry that differs from the commitlog", "topic", m.Topic, "queue", m.QueueID, "offset", m.QueueOffset)
		if err := q.cq.TruncateTo(m.QueueOffset); err != nil {
			return false, err
		}
		max = m.QueueOffset
	}
	if m.QueueOffset > max {
		b.metrics.dispatchSkipped.Inc()
		b.log.Warn("dispatch skipped record with unexpected offset", "topic", m.Topic, "queue", m.QueueID, "offset", m.QueueOffset, "expected", max, "pos", pos)
		return false, nil
	}
	return true, q.cq.Append(m.QueueOffset, e)
}

// wake releases every long-polling reader to look again.
func (b *Broker) wake() {
	b.notifyMu.Lock()
	close(b.notify)
	b.notify = make(chan struct{})
	b.notifyMu.Unlock()
}

// waitDispatch returns a channel closed at the next dispatcher advance.
func (b *Broker) waitDispatch() <-chan struct{} {
	b.notifyMu.Lock()
	defer b.notifyMu.Unlock()
	return b.notify
}

func idKey(id string) string          { return "i\x00" + id }
func keyKey(topic, key string) string { return "k\x00" + topic + "\x00" + key }
