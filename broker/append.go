package broker

import (
	"context"
	"fmt"
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
	Properties  map[string]string
	Body        []byte
	BornTime    time.Time
	BornDC      string
	Flags       uint32
}

// SendRequest appends a batch to one queue of a topic.
type SendRequest struct {
	Topic string
	// QueueID is the queue; -1 lets the broker pick (round robin).
	QueueID  int32
	Messages []Message
}

// SendResult is the placement of one appended message.
type SendResult struct {
	ID          string
	QueueID     uint32
	QueueOffset int64
	StoreTime   time.Time
}

// Send validates a batch, appends it to the commitlog with consecutive
// offsets of one queue, and returns once the flush policy is satisfied:
// under sync flush only after an fsync covers the whole batch. Nothing is
// written when any message is invalid.
func (b *Broker) Send(ctx context.Context, req SendRequest) ([]SendResult, error) {
	start := time.Now()
	recs, results, end, err := b.append(req)
	if err != nil {
		b.metrics.sendErrors.Inc()
		return nil, err
	}
	if err := b.clog.WaitDurable(ctx, end); err != nil {
		b.metrics.sendErrors.Inc()
		return nil, fmt.Errorf("broker: flush: %w", err)
	}
	b.metrics.observeSend(req.Topic, len(recs), recsBytes(recs), time.Since(start))
	return results, nil
}

// append assigns offsets and writes the records under appendMu; it does
// not wait for the fsync, so concurrent senders share one (group commit).
func (b *Broker) append(req SendRequest) ([][]byte, []SendResult, int64, error) {
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	if b.isClosed() {
		return nil, nil, 0, ErrClosed
	}
	t, q, qid, err := b.writableQueue(req)
	if err != nil {
		return nil, nil, 0, err
	}
	limit := b.messageLimit(t)
	now := time.Now()
	recs := make([][]byte, len(req.Messages))
	results := make([]SendResult, len(req.Messages))
	for i, in := range req.Messages {
		m, err := b.toRecord(i, in, req.Topic, qid, q.next+int64(i), now, limit)
		if err != nil {
			return nil, nil, 0, err
		}
		recs[i] = commitlog.AppendRecord(nil, &m)
		results[i] = SendResult{ID: m.ID, QueueID: qid, QueueOffset: m.QueueOffset, StoreTime: now}
	}
	res, err := b.clog.Append(recs)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("broker: append: %w", err)
	}
	q.next += int64(len(recs))
	return recs, results, res.End, nil
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
	if h := commitlog.EncodedSize(&m) - len(in.Body); h > maxHeaderBytes {
		return m, fmt.Errorf("%w: message %d: keys, tag and properties take %d bytes, over %d", ErrInvalidArgument, i, h, maxHeaderBytes)
	}
	return m, nil
}

func recsBytes(recs [][]byte) int {
	n := 0
	for _, r := range recs {
		n += len(r)
	}
	return n
}
