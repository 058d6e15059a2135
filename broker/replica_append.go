package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/internal/atomicfile"
)

// QueueReplicaState is one queue's position for replication.
type QueueReplicaState struct {
	QueueID    uint32
	NextOffset int64
	MinOffset  int64
	// LastEpoch is the epoch of the record at NextOffset-1 (0: none).
	LastEpoch uint64
	// FollowerOffsets are what follower DCs acknowledged (a leader's view).
	FollowerOffsets map[string]int64
}

// ReplicaState is a topic's replication state on this broker.
type ReplicaState struct {
	Epoch  uint64
	Order  Order
	Leader bool
	Queues []QueueReplicaState
	// OutOfSync are the follower DCs of a sync topic whose primary is
	// this DC that are out of its in-sync set here.
	OutOfSync []string
}

// dispatchWait bounds the waits for the dispatcher to reach a queue's
// last appended record.
const dispatchWait = 10 * time.Second

// ReplicaAppend stores records copied from the topic's leader in another
// DC at exactly their queue offsets: offset must be the queue's next
// offset here and the records consecutive from it. Ids, epochs, born and
// store times are kept; the records are flagged FlagReplicated and carry
// PropReplicatedAt, the time they were stored here. It returns
// the queue's next offset once the records are durable (the follower's
// next fetch acknowledges them to the leader).
func (b *Broker) ReplicaAppend(ctx context.Context, topic string, qid uint32, offset int64, msgs []commitlog.Message) (int64, error) {
	if len(msgs) == 0 || len(msgs) > MaxPullMessages {
		return 0, fmt.Errorf("%w: a replica append carries 1 to %d records, not %d", ErrInvalidArgument, MaxPullMessages, len(msgs))
	}
	b.appendMu.Lock()
	q, err := b.followerQueueLocked(topic, qid, "replica append")
	if err != nil {
		b.appendMu.Unlock()
		return 0, err
	}
	if q.next != offset {
		b.appendMu.Unlock()
		return 0, fmt.Errorf("%w: queue %s/%d is at offset %d here, the replica append starts at %d", ErrOffsetMismatch, topic, qid, q.next, offset)
	}
	recs := make([][]byte, len(msgs))
	now := strconv.FormatInt(time.Now().UnixNano(), 10)
	for i := range msgs {
		m := msgs[i]
		if m.Topic != topic || m.QueueID != qid || m.QueueOffset != offset+int64(i) || m.Flags&commitlog.FlagTruncate != 0 {
			b.appendMu.Unlock()
			return 0, fmt.Errorf("%w: replica record %d is %s/%d@%d, expected %s/%d@%d", ErrInvalidArgument, i, m.Topic, m.QueueID, m.QueueOffset, topic, qid, offset+int64(i))
		}
		m.Flags |= commitlog.FlagReplicated
		m.Properties = maps.Clone(m.Properties)
		if m.Properties == nil {
			m.Properties = map[string]string{}
		}
		m.Properties[PropReplicatedAt] = now
		recs[i] = commitlog.AppendRecord(nil, &m)
	}
	res, err := b.clog.Append(recs)
	if err == nil {
		q.next += int64(len(recs))
	}
	next := q.next
	b.appendMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("broker: replica append: %w", err)
	}
	if err := b.clog.WaitDurable(ctx, res.End); err != nil {
		return 0, fmt.Errorf("broker: flush: %w", err)
	}
	b.metrics.replicated.Add(float64(len(recs)))
	return next, nil
}

// followerQueueLocked returns the queue of a fenced topic this broker
// does not lead. The caller holds appendMu.
func (b *Broker) followerQueueLocked(topic string, qid uint32, what string) (*queue, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.isClosed() {
		return nil, ErrClosed
	}
	t, err := b.topicLocked(topic)
	if err != nil {
		return nil, err
	}
	if (t.Epoch == 0 && !t.Order.Standby) || t.Order.leads(b.cfg.DC) {
		return nil, fmt.Errorf("%w: broker %s leads topic %q at epoch %d (primary %q): a %s goes to a follower", ErrNotLeader, b.cfg.Name, topic, t.Epoch, t.Order.Primary, what)
	}
	if qid >= t.Queues {
		return nil, fmt.Errorf("%w: queue %d of topic %q (it has queues 0..%d)", ErrInvalidQueue, qid, topic, t.Queues-1)
	}
	return b.queues[queueKey{topic, qid}], nil
}

// ReplicaTruncate cuts a follower queue back to min(offset, the end of
// leaderEpoch in this queue) (leaderEpoch 0: to offset). The records cut
// off are first written to a quarantine file (JSON lines, in
// DATA/quarantine/), then a truncation record in the commitlog makes the
// cut survive recovery: the dispatcher cuts the consume queue when it
// reaches it, so the records are never served again. Committed offsets
// past the cut move back to it; pop state of the queue is dropped.
func (b *Broker) ReplicaTruncate(ctx context.Context, topic string, qid uint32, offset int64, leaderEpoch uint64, reason string) (int64, string, error) {
	b.appendMu.Lock()
	q, err := b.followerQueueLocked(topic, qid, "truncation")
	if err == nil {
		err = b.awaitQueueDispatched(ctx, q)
	}
	cut := offset
	if err == nil && leaderEpoch > 0 {
		var end int64
		end, err = b.epochEnd(topic, qid, leaderEpoch)
		cut = min(cut, end)
	}
	if err != nil || cut >= q.next {
		b.appendMu.Unlock()
		return 0, "", err
	}
	if cut < q.cq.MinOffset() {
		b.appendMu.Unlock()
		return 0, "", fmt.Errorf("%w: cannot truncate %s/%d to %d, below its first offset %d", ErrOffsetOutOfRange, topic, qid, cut, q.cq.MinOffset())
	}
	removed := q.next - cut
	file, err := b.quarantine(topic, qid, cut, q.next, reason)
	if err != nil {
		b.appendMu.Unlock()
		return 0, "", err
	}
	marker := commitlog.Message{Topic: topic, QueueID: qid, QueueOffset: cut, Flags: commitlog.FlagTruncate, StoreTime: time.Now().UnixNano(), ID: "truncate"}
	res, err := b.clog.Append([][]byte{commitlog.AppendRecord(nil, &marker)})
	if err != nil {
		b.appendMu.Unlock()
		return 0, "", fmt.Errorf("broker: truncation record: %w", err)
	}
	q.next = cut
	b.ids.dropTopic(topic)
	b.appendMu.Unlock()
	b.repl.reset(topic)
	b.dropPopState(func(k popKey) bool { return k.topic == topic && k.queue == qid }, func() {
		for _, e := range b.offs.Snapshot() {
			if e.Topic == topic && e.Queue == qid && e.Offset > cut {
				b.offs.Commit(e.Group, topic, qid, cut)
			}
		}
	})
	if err := b.clog.WaitDurable(ctx, res.End); err != nil {
		return 0, "", fmt.Errorf("broker: flush: %w", err)
	}
	if err := b.awaitDispatchedPos(ctx, res.End); err != nil {
		return 0, "", err
	}
	b.metrics.truncated.Add(float64(removed))
	b.log.Warn("follower queue truncated: divergent records quarantined", "topic", topic, "queue", qid, "to", cut, "removed", removed, "file", file, "reason", reason)
	return removed, file, nil
}

// quarantineRecord is one line of a quarantine file.
type quarantineRecord struct {
	Topic       string            `json:"topic"`
	QueueID     uint32            `json:"queue_id"`
	QueueOffset int64             `json:"queue_offset"`
	Epoch       uint64            `json:"epoch"`
	ID          string            `json:"id"`
	Keys        []string          `json:"keys,omitempty"`
	Tag         string            `json:"tag,omitempty"`
	ShardingKey string            `json:"sharding_key,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	BornDC      string            `json:"born_dc"`
	BornTime    time.Time         `json:"born_time"`
	StoreTime   time.Time         `json:"store_time"`
	Body        []byte            `json:"body"`
}

// quarantine copies the records [from, to) of a queue to a new file.
func (b *Broker) quarantine(topic string, qid uint32, from, to int64, reason string) (string, error) {
	q, err := b.queueOf(topic, qid)
	if err != nil {
		return "", err
	}
	var buf []byte
	head, _ := json.Marshal(map[string]any{"quarantined_at": time.Now().UTC(), "reason": reason, "from": from, "to": to})
	buf = append(append(buf, head...), '\n')
	for off := from; off < to; {
		entries, err := q.Range(off, 256, nil)
		if err != nil {
			return "", b.mapQueueErr(err, topic, qid, off)
		}
		if len(entries) == 0 {
			return "", fmt.Errorf("broker: quarantine %s/%d: no entry at offset %d below %d", topic, qid, off, to)
		}
		for _, e := range entries {
			if off >= to {
				break
			}
			m, err := b.readEntry(e, topic, qid)
			if err != nil {
				return "", err
			}
			line, _ := json.Marshal(quarantineRecord{Topic: topic, QueueID: qid, QueueOffset: m.QueueOffset, Epoch: m.Epoch, ID: m.ID,
				Keys: m.Keys, Tag: m.Tag, ShardingKey: m.ShardingKey, Properties: m.Properties, BornDC: m.BornDC,
				BornTime: time.Unix(0, m.BornTime).UTC(), StoreTime: time.Unix(0, m.StoreTime).UTC(), Body: m.Body})
			buf = append(append(buf, line...), '\n')
			off++
		}
	}
	dir := filepath.Join(b.cfg.DataDir, "quarantine")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d-%d-%d.jsonl", topic, qid, from, time.Now().UnixNano()))
	return path, atomicfile.WriteFile(path, buf, 0o644)
}

// awaitQueueDispatched waits until the consume queue holds every record
// appended to q. The caller holds appendMu, so no new ones come.
func (b *Broker) awaitQueueDispatched(ctx context.Context, q *queue) error {
	deadline := time.Now().Add(dispatchWait)
	for q.cq.MaxOffset() < q.next {
		wake := b.waitDispatch()
		if q.cq.MaxOffset() >= q.next {
			break
		}
		if !b.await(ctx, wake, deadline) {
			return fmt.Errorf("broker: the dispatcher did not reach offset %d within %v", q.next, dispatchWait)
		}
	}
	return nil
}

// awaitDispatchedPos waits until the dispatcher has passed commitlog
// position pos.
func (b *Broker) awaitDispatchedPos(ctx context.Context, pos int64) error {
	deadline := time.Now().Add(dispatchWait)
	for b.dispatched.Load() < pos {
		wake := b.waitDispatch()
		if b.dispatched.Load() >= pos {
			break
		}
		if !b.await(ctx, wake, deadline) {
			return fmt.Errorf("broker: the dispatcher did not reach position %d within %v", pos, dispatchWait)
		}
	}
	return nil
}

// ReplicaState reports a topic's queues: next offset (every appended
// record dispatched), last epoch and, where this broker leads, what the
// followers acknowledged.
func (b *Broker) ReplicaState(ctx context.Context, topic string) (ReplicaState, error) {
	t, err := b.Topic(topic)
	if err != nil {
		return ReplicaState{}, err
	}
	st := ReplicaState{Epoch: t.Epoch, Order: t.Order, Leader: t.Epoch > 0 && t.Order.leads(b.cfg.DC)}
	if t.Order.syncReplicated() && t.Order.primaryIs(b.cfg.DC) {
		for _, dc := range t.Order.Followers {
			if !b.isr.inSync(topic, dc) {
				st.OutOfSync = append(st.OutOfSync, dc)
			}
		}
	}
	for qid := range t.Queues {
		qs, err := b.queueReplicaState(ctx, topic, qid)
		if err != nil {
			return st, err
		}
		st.Queues = append(st.Queues, qs)
	}
	return st, nil
}

func (b *Broker) queueReplicaState(ctx context.Context, topic string, qid uint32) (QueueReplicaState, error) {
	b.mu.RLock()
	q, ok := b.queues[queueKey{topic, qid}]
	b.mu.RUnlock()
	if !ok {
		return QueueReplicaState{}, fmt.Errorf("%w: %s/%d", ErrUnknownTopic, topic, qid)
	}
	b.appendMu.Lock()
	next := q.next
	b.appendMu.Unlock()
	deadline := time.Now().Add(dispatchWait)
	for q.cq.MaxOffset() < next {
		wake := b.waitDispatch()
		if q.cq.MaxOffset() >= next {
			break
		}
		if !b.await(ctx, wake, deadline) {
			return QueueReplicaState{}, fmt.Errorf("broker: the dispatcher did not reach %s/%d offset %d within %v", topic, qid, next, dispatchWait)
		}
	}
	qs := QueueReplicaState{QueueID: qid, NextOffset: next, MinOffset: q.cq.MinOffset(), FollowerOffsets: b.repl.get(queueKey{topic, qid})}
	if next > qs.MinOffset {
		e, err := b.epochAt(topic, qid, next-1)
		if err != nil {
			return qs, err
		}
		qs.LastEpoch = e
	}
	return qs, nil
}

// Fence blocks an ordered topic's writes here at once, at epoch (raised
// if newer; an older epoch is ErrStaleEpoch), before the metadata's blocked
// record arrives through metasync. It returns the queues' state, every
// accepted record included: nothing more is appended in this epoch.
func (b *Broker) Fence(ctx context.Context, topic string, epoch uint64) (ReplicaState, error) {
	b.appendMu.Lock()
	b.mu.Lock()
	t, err := b.topicLocked(topic)
	switch {
	case err != nil:
	case epoch < t.Epoch:
		err = fmt.Errorf("%w: topic %q is at epoch %d on broker %s, the fence carries %d", ErrStaleEpoch, topic, t.Epoch, b.cfg.Name, epoch)
	case epoch == 0:
		err = fmt.Errorf("%w: a fence needs an epoch", ErrInvalidArgument)
	default:
		t.Epoch, t.Order.Blocked = epoch, true
		err = b.putTopicLocked(t)
	}
	b.mu.Unlock()
	b.appendMu.Unlock()
	if err != nil {
		return ReplicaState{}, err
	}
	b.log.Info("topic fenced", "topic", topic, "epoch", epoch)
	b.repl.changed()
	return b.ReplicaState(ctx, topic)
}
