package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/consumequeue"
	"github.com/duomq/duomq/internal/names"
)

// PullRequest reads one queue from an offset.
type PullRequest struct {
	Topic       string
	QueueID     uint32
	Offset      int64
	MaxMessages int
	MaxBytes    int
	// Wait is how long to long-poll when nothing is available.
	Wait time.Duration
	// Tags filters by tag (empty: all).
	Tags []string
	// replica: a follower's fetch, which reads past the sync read cap.
	replica bool
}

// PullResult is a page of one queue.
type PullResult struct {
	Messages   []commitlog.Message
	NextOffset int64
	MinOffset  int64
	MaxOffset  int64
}

// Pull limits.
const (
	DefaultPullMessages = 32
	MaxPullMessages     = 1024
	DefaultPullBytes    = 4 << 20
	MaxPullBytes        = 64 << 20
)

// Pull returns messages of one queue from req.Offset. An offset below the
// queue's min (expired) or above its max is ErrOffsetOutOfRange; at the max
// it waits up to req.Wait (capped by max-pull-wait) for a new message. A
// record that fails its checksum is returned as ErrCorruption, never served.
func (b *Broker) Pull(ctx context.Context, req PullRequest) (PullResult, error) {
	req = pullDefaults(req)
	if req.MaxMessages > MaxPullMessages || req.MaxBytes > MaxPullBytes || req.MaxMessages < 0 || req.MaxBytes < 0 {
		return PullResult{}, fmt.Errorf("%w: max messages %d (limit %d), max bytes %d (limit %d)", ErrInvalidArgument, req.MaxMessages, MaxPullMessages, req.MaxBytes, MaxPullBytes)
	}
	deadline := time.Now().Add(min(req.Wait, b.cfg.MaxPullWait))
	for {
		wake := b.waitDispatch()
		res, err := b.pullOnce(req)
		if err != nil || len(res.Messages) > 0 || res.NextOffset > req.Offset || !time.Now().Before(deadline) {
			b.metrics.pulledMessages.Add(float64(len(res.Messages)))
			return res, err
		}
		if !b.await(ctx, wake, deadline) {
			return res, nil
		}
	}
}

func pullDefaults(req PullRequest) PullRequest {
	if req.MaxMessages == 0 {
		req.MaxMessages = DefaultPullMessages
	}
	if req.MaxBytes == 0 {
		req.MaxBytes = DefaultPullBytes
	}
	return req
}

// await waits for wake, the deadline, ctx or Close; false means stop.
func (b *Broker) await(ctx context.Context, wake <-chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-wake:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-b.closed:
	}
	return false
}

func (b *Broker) pullOnce(req PullRequest) (PullResult, error) {
	q, err := b.readableQueue(req.Topic, req.QueueID)
	if err != nil {
		return PullResult{}, err
	}
	res := PullResult{MinOffset: q.MinOffset(), MaxOffset: q.MaxOffset(), NextOffset: req.Offset}
	if req.Offset < res.MinOffset || req.Offset > res.MaxOffset {
		return res, fmt.Errorf("%w: offset %d of %s/%d is outside [%d, %d]", ErrOffsetOutOfRange, req.Offset, req.Topic, req.QueueID, res.MinOffset, res.MaxOffset)
	}
	n := req.MaxMessages
	if !req.replica {
		if limit := b.readCap(req.Topic, req.QueueID); limit < res.MaxOffset {
			n = int(max(0, min(int64(n), limit-req.Offset)))
		}
	}
	if n == 0 {
		return res, nil
	}
	entries, err := q.Range(req.Offset, n, nil)
	if err != nil {
		return res, b.mapQueueErr(err, req.Topic, req.QueueID, req.Offset)
	}
	filter := tagFilter(req.Tags)
	bytes := 0
	for i, e := range entries {
		if len(res.Messages) > 0 && bytes+int(e.Size) > req.MaxBytes {
			break
		}
		res.NextOffset = req.Offset + int64(i) + 1
		if filter != nil && !filter[e.TagHash] {
			continue
		}
		m, err := b.readEntry(e, req.Topic, req.QueueID)
		if err != nil {
			return res, err
		}
		if filter != nil && !containsTag(req.Tags, m.Tag) {
			continue // a hash collision
		}
		bytes += int(e.Size)
		res.Messages = append(res.Messages, m)
	}
	return res, nil
}

func (b *Broker) readEntry(e consumequeue.Entry, topic string, qid uint32) (commitlog.Message, error) {
	m, err := b.clog.ReadMessage(e.Pos, int(e.Size))
	if errors.Is(err, commitlog.ErrOutOfRange) {
		return m, fmt.Errorf("%w: %s/%d: message at commitlog position %d was removed by retention", ErrOffsetOutOfRange, topic, qid, e.Pos)
	}
	return m, err
}

func (b *Broker) mapQueueErr(err error, topic string, qid uint32, off int64) error {
	if errors.Is(err, consumequeue.ErrOutOfRange) {
		return fmt.Errorf("%w: %s/%d offset %d: %v", ErrOffsetOutOfRange, topic, qid, off, err)
	}
	return err
}

func tagFilter(tags []string) map[int64]bool {
	if len(tags) == 0 {
		return nil
	}
	f := make(map[int64]bool, len(tags))
	for _, t := range tags {
		f[consumequeue.TagHash(t)] = true
	}
	return f
}

func containsTag(tags []string, tag string) bool {
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

// readableQueue returns the consume queue of (topic, id) if reads are allowed.
func (b *Broker) readableQueue(topic string, id uint32) (*consumequeue.Queue, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, err := b.topicLocked(topic)
	if err != nil {
		return nil, err
	}
	if !b.st.Perm.CanRead() {
		return nil, fmt.Errorf("%w: broker %s is %s", ErrReadForbidden, b.cfg.Name, b.st.Perm)
	}
	if !t.Perm.CanRead() {
		return nil, fmt.Errorf("%w: topic %q is %s on broker %s", ErrReadForbidden, topic, t.Perm, b.cfg.Name)
	}
	return b.queueLocked(t, id)
}

func (b *Broker) queueLocked(t TopicConfig, id uint32) (*consumequeue.Queue, error) {
	q, ok := b.queues[queueKey{t.Name, id}]
	if !ok {
		return nil, fmt.Errorf("%w: queue %d of topic %q (it has queues 0..%d)", ErrInvalidQueue, id, t.Name, t.Queues-1)
	}
	return q.cq, nil
}

// QueueOffsets returns the min (first readable) and max (next to be
// written) offsets of a queue.
func (b *Broker) QueueOffsets(topic string, id uint32) (minOff, maxOff int64, err error) {
	q, err := b.queueOf(topic, id)
	if err != nil {
		return 0, 0, err
	}
	return q.MinOffset(), q.MaxOffset(), nil
}

func (b *Broker) queueOf(topic string, id uint32) (*consumequeue.Queue, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, err := b.topicLocked(topic)
	if err != nil {
		return nil, err
	}
	return b.queueLocked(t, id)
}

// OffsetForTime returns the first offset of the queue whose store time is
// at or after t (the max offset when none is), for consumer offset resets.
func (b *Broker) OffsetForTime(topic string, id uint32, t time.Time) (int64, error) {
	q, err := b.queueOf(topic, id)
	if err != nil {
		return 0, err
	}
	ts := t.UnixNano()
	return q.Search(func(e consumequeue.Entry) (bool, error) {
		m, err := b.readEntry(e, topic, id)
		if err != nil {
			return false, err
		}
		return m.StoreTime >= ts, nil
	})
}

// LookupID returns the newest record with the given id, in any topic.
func (b *Broker) LookupID(id string) (commitlog.Message, error) {
	return b.LookupIDIn("", id)
}

// LookupIDIn returns the newest record with the given id in topic or one
// of its mirrors (any topic when topic is empty).
func (b *Broker) LookupIDIn(topic, id string) (commitlog.Message, error) {
	ms, err := b.lookup(idKey(id), 1, maxIDCandidates, func(m *commitlog.Message) bool {
		if _, of, ok := names.ParseMirror(m.Topic); ok && of == topic {
			return m.ID == id
		}
		return m.ID == id && (topic == "" || m.Topic == topic)
	})
	if err != nil {
		return commitlog.Message{}, err
	}
	if len(ms) == 0 {
		if topic != "" {
			return commitlog.Message{}, fmt.Errorf("%w: id %q in topic %q", ErrNotFound, id, topic)
		}
		return commitlog.Message{}, fmt.Errorf("%w: id %q", ErrNotFound, id)
	}
	return ms[0], nil
}

// LookupKey returns up to max messages of topic carrying key, newest first.
func (b *Broker) LookupKey(topic, key string, max int) ([]commitlog.Message, error) {
	if _, err := b.Topic(topic); err != nil {
		return nil, err
	}
	if max <= 0 || max > 1024 {
		max = 64
	}
	return b.lookup(keyKey(topic, key), max, max*4, func(m *commitlog.Message) bool {
		return m.Topic == topic && containsTag(m.Keys, key)
	})
}

// lookup reads up to cands index candidates and keeps the first max that
// match (the index may return hash collisions, and positions removed by
// retention are skipped).
func (b *Broker) lookup(key string, max, cands int, match func(*commitlog.Message) bool) ([]commitlog.Message, error) {
	positions, err := b.idx.Lookup(key, cands)
	if err != nil {
		return nil, err
	}
	var out []commitlog.Message
	for _, pos := range positions {
		if pos < b.clog.MinPos() || pos >= b.clog.WrittenPos() {
			continue
		}
		m, err := b.readAt(pos)
		if err != nil {
			return nil, err
		}
		if match(&m) && b.stillQueued(&m, pos) {
			out = append(out, m)
			if len(out) == max {
				break
			}
		}
	}
	return out, nil
}

// stillQueued reports whether a record is still reachable through its
// consume queue (not of a deleted topic, nor cut off as a divergent tail).
func (b *Broker) stillQueued(m *commitlog.Message, pos int64) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.queuedAt(m, pos)
}

// readAt reads the record at pos without knowing its size.
func (b *Broker) readAt(pos int64) (commitlog.Message, error) {
	head, err := b.clog.ReadAt(pos, 4)
	if err != nil {
		return commitlog.Message{}, err
	}
	n, err := commitlog.PeekHeader(head)
	if err != nil {
		return commitlog.Message{}, err
	}
	return b.clog.ReadMessage(pos, n)
}
