package broker

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/consumequeue"
)

// ReplicaFetchRequest is a follower DC's read of one queue (see the
// replication invariants in replica.go).
type ReplicaFetchRequest struct {
	Topic   string
	QueueID uint32
	// Offset is the first offset wanted; the follower holds every record
	// before it durably, which acknowledges them.
	Offset int64
	// LastEpoch is the epoch of the follower's record at Offset-1.
	LastEpoch   uint64
	MaxMessages int
	MaxBytes    int
	Wait        time.Duration
	FollowerDC  string
}

// ReplicaFetchResult is a page of records for a follower, or the point it
// must truncate to first.
type ReplicaFetchResult struct {
	Messages   []commitlog.Message
	LeaderNext int64
	LeaderMin  int64
	// Diverging: the follower's records from TruncateTo on (or from where
	// Epoch ends in its own log, if earlier) are not in this log.
	Diverging  bool
	TruncateTo int64
	Epoch      uint64
	// LagBytes is the size of the leader's records past those returned.
	LagBytes int64
}

// replProgress holds what each follower DC acknowledged, and when it last
// fetched, per queue led here, and wakes senders and readers waiting on
// it. Acknowledgements are forgotten when a queue of the topic is
// truncated here.
type replProgress struct {
	mu      sync.Mutex
	acked   map[queueKey]map[string]int64
	fetched map[queueKey]map[string]time.Time
	ch      chan struct{}
}

func newReplProgress() *replProgress {
	return &replProgress{acked: map[queueKey]map[string]int64{}, fetched: map[queueKey]map[string]time.Time{}, ch: make(chan struct{})}
}

// ack records that dc holds every record of k before off, fetching at
// now; it reports whether that advanced the follower.
func (p *replProgress) ack(k queueKey, dc string, off int64, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fetched[k]
	if f == nil {
		f = map[string]time.Time{}
		p.fetched[k] = f
	}
	f[dc] = now
	m := p.acked[k]
	if m == nil {
		m = map[string]int64{}
		p.acked[k] = m
	}
	if old, ok := m[dc]; ok && old >= off {
		return false
	}
	m[dc] = off
	p.changedLocked()
	return true
}

func (p *replProgress) get(k queueKey) map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.acked[k])
}

// lastFetch returns when each follower DC last fetched k.
func (p *replProgress) lastFetch(k queueKey) map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.fetched[k])
}

// reset forgets the acknowledgements of a topic's queues.
func (p *replProgress) reset(topic string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.acked {
		if k.topic == topic {
			delete(p.acked, k)
		}
	}
	for k := range p.fetched {
		if k.topic == topic {
			delete(p.fetched, k)
		}
	}
	p.changedLocked()
}

// forget drops what follower id acknowledged and when it fetched, on
// every queue.
func (p *replProgress) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.acked {
		delete(m, id)
	}
	for _, m := range p.fetched {
		delete(m, id)
	}
	p.changedLocked()
}

func (p *replProgress) wait() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch
}

func (p *replProgress) changed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changedLocked()
}

func (p *replProgress) changedLocked() {
	close(p.ch)
	p.ch = make(chan struct{})
}

// ReplicaFetch serves a follower: it checks that the follower's log agrees
// with this one up to the requested offset (else it answers where to
// truncate), counts the offset as the follower's acknowledgement, and
// returns the records from it, waiting up to req.Wait for new ones.
// Records are read past the sync read cap: followers are what lifts it.
func (b *Broker) ReplicaFetch(ctx context.Context, req ReplicaFetchRequest) (ReplicaFetchResult, error) {
	req.Offset = max(req.Offset, 0)
	pull := pullDefaults(PullRequest{Topic: req.Topic, QueueID: req.QueueID, Offset: req.Offset,
		MaxMessages: req.MaxMessages, MaxBytes: req.MaxBytes, replica: true})
	if pull.MaxMessages > MaxPullMessages || pull.MaxBytes > MaxPullBytes || pull.MaxMessages < 0 || pull.MaxBytes < 0 {
		return ReplicaFetchResult{}, fmt.Errorf("%w: max messages %d (limit %d), max bytes %d (limit %d)", ErrInvalidArgument, pull.MaxMessages, MaxPullMessages, pull.MaxBytes, MaxPullBytes)
	}
	t, err := b.Topic(req.Topic)
	if err != nil {
		return ReplicaFetchResult{}, err
	}
	if req.FollowerDC == b.cfg.DC {
		return ReplicaFetchResult{}, fmt.Errorf("%w: follower DC %s is this broker's own DC", ErrInvalidArgument, req.FollowerDC)
	}
	div, err := b.divergence(req)
	if err != nil || div.Diverging {
		return div, err
	}
	if req.FollowerDC != "" {
		if b.repl.ack(queueKey{req.Topic, req.QueueID}, req.FollowerDC, req.Offset, time.Now()) {
			b.wake() // reads capped at the followers' offsets may go on
		}
		if !b.isr.inSync(req.Topic, req.FollowerDC) {
			b.evalSyncSet(req.Topic, time.Now()) // it may have caught up
		}
	}
	deadline := time.Now().Add(min(req.Wait, b.cfg.MaxPullWait))
	for {
		wake := b.waitDispatch()
		res, err := b.pullOnce(pull)
		if err != nil || len(res.Messages) > 0 || !time.Now().Before(deadline) {
			out := ReplicaFetchResult{Messages: res.Messages, LeaderNext: res.MaxOffset, LeaderMin: res.MinOffset, Epoch: t.Epoch}
			if err == nil {
				out.LagBytes = b.bytesFrom(req.Topic, req.QueueID, req.Offset+int64(len(res.Messages)), res.MaxOffset)
			}
			return out, err
		}
		if !b.await(ctx, wake, deadline) {
			return ReplicaFetchResult{LeaderNext: res.MaxOffset, LeaderMin: res.MinOffset, Epoch: t.Epoch}, nil
		}
	}
}

// lagBytesScan bounds the entries bytesFrom reads; past it the size is
// extrapolated from their mean.
const lagBytesScan = 65536

// bytesFrom is the size of a queue's records in [from, to).
func (b *Broker) bytesFrom(topic string, qid uint32, from, to int64) int64 {
	q, err := b.queueOf(topic, qid)
	if err != nil || from >= to {
		return 0
	}
	var sum, n int64
	for off := from; off < to && n < lagBytesScan; {
		es, err := q.Range(off, int(min(to-off, 1024)), nil)
		if err != nil || len(es) == 0 {
			break
		}
		for _, e := range es {
			sum += int64(e.Size)
		}
		n += int64(len(es))
		off += int64(len(es))
	}
	if n > 0 && n < to-from {
		sum = sum * (to - from) / n
	}
	return sum
}

// divergence compares the follower's position with this log: p is where
// the follower's last epoch ends here (the first offset of a newer epoch)
// and e the newest epoch here not newer than the follower's. The follower
// diverges when it is past p, or when this log has no record of its last
// epoch (e differs): then it must cut back to min(p, where e ends in its
// own log).
func (b *Broker) divergence(req ReplicaFetchRequest) (ReplicaFetchResult, error) {
	q, err := b.queueOf(req.Topic, req.QueueID)
	if err != nil {
		return ReplicaFetchResult{}, err
	}
	res := ReplicaFetchResult{LeaderNext: q.MaxOffset(), LeaderMin: q.MinOffset()}
	if req.Offset == 0 {
		return res, nil
	}
	p, err := b.epochEnd(req.Topic, req.QueueID, req.LastEpoch)
	if err != nil {
		return res, err
	}
	e := uint64(0)
	if p > q.MinOffset() {
		if e, err = b.epochAt(req.Topic, req.QueueID, p-1); err != nil {
			return res, err
		}
	}
	if req.Offset > p || (e != req.LastEpoch && p > q.MinOffset()) {
		res.Diverging, res.TruncateTo, res.Epoch = true, min(p, req.Offset), e
	}
	return res, nil
}

// epochEnd returns the first offset of the queue whose record's epoch is
// newer than epoch (the queue's next offset when none is): a queue's
// epochs never decrease, so a binary search finds it.
func (b *Broker) epochEnd(topic string, qid uint32, epoch uint64) (int64, error) {
	q, err := b.queueOf(topic, qid)
	if err != nil {
		return 0, err
	}
	return q.Search(func(e consumequeue.Entry) (bool, error) {
		m, err := b.readEntry(e, topic, qid)
		return m.Epoch > epoch, err
	})
}

// epochAt returns the epoch of the record at offset.
func (b *Broker) epochAt(topic string, qid uint32, off int64) (uint64, error) {
	q, err := b.queueOf(topic, qid)
	if err != nil {
		return 0, err
	}
	e, err := q.Get(off)
	if err != nil {
		return 0, b.mapQueueErr(err, topic, qid, off)
	}
	m, err := b.readEntry(e, topic, qid)
	return m.Epoch, err
}

// readCap is the offset reads of a queue stop at: for a sync-replicated
// topic whose primary is this DC (leading, or blocked for a switchover),
// the lowest offset its followers acknowledged, so no consumer sees a
// record a failover could lose; else no cap. Under sync policy degrade
// only the in-sync followers count (none in sync: no cap), as sends do
// not wait for the others.
func (b *Broker) readCap(topic string, qid uint32) int64 {
	t, err := b.Topic(topic)
	if err != nil {
		return math.MaxInt64
	}
	limit := b.setReadCap(t, qid, math.MaxInt64)
	if !t.Order.syncReplicated() || !t.Order.primaryIs(b.cfg.DC) {
		return limit
	}
	acked := b.repl.get(queueKey{topic, qid})
	for _, dc := range t.Order.Followers {
		if t.Order.degrades() && !b.isr.inSync(topic, dc) {
			continue
		}
		limit = min(limit, acked[dc]) // a follower never heard from caps at 0
	}
	return limit
}

// awaitFollowers returns once every in-sync follower DC of a
// sync-replicated topic has acknowledged the results stored in it, or
// fails with ErrReplicaTimeout after replica-timeout, or at once when a
// follower leaves the in-sync set under sync policy fail. The followers
// and the set are re-read on every change, so a follower DC marked down,
// or out of sync under policy degrade, stops being waited for.
func (b *Broker) awaitFollowers(ctx context.Context, topic string, results []SendResult) error {
	upTo := map[uint32]int64{}
	for _, r := range results {
		if r.Topic == topic {
			upTo[r.QueueID] = max(upTo[r.QueueID], r.QueueOffset+1)
		}
	}
	if len(upTo) == 0 {
		return nil
	}
	timer := time.NewTimer(b.cfg.ReplicaTimeout)
	defer timer.Stop()
	for {
		wake := b.repl.wait()
		missing, err := b.missingAcks(topic, upTo)
		if err != nil || missing == "" {
			return err
		}
		select {
		case <-wake:
		case <-timer.C:
			b.metrics.replicaTimeouts.Inc()
			return fmt.Errorf("%w: topic %q: %s after %v (replica-timeout); the messages are stored on the leader and a retry of the same ids does not store them twice",
				ErrReplicaTimeout, topic, missing, b.cfg.ReplicaTimeout)
		case <-ctx.Done():
			return fmt.Errorf("%w: topic %q: %s: %v", ErrReplicaTimeout, topic, missing, ctx.Err())
		case <-b.closed:
			return ErrClosed
		}
	}
}

// missingAcks describes the in-sync followers still behind upTo (""
// when none is). Under sync policy fail, a follower out of sync that
// lacks some of the records is an error.
func (b *Broker) missingAcks(topic string, upTo map[uint32]int64) (string, error) {
	t, err := b.Topic(topic)
	if err != nil {
		return "", err
	}
	inSet, err := b.setMissing(t, upTo)
	if err != nil {
		return "", err
	}
	if !t.Order.syncReplicated() {
		return inSet, nil
	}
	var behind []string
	outBehind := false
	for qid, want := range upTo {
		acked := b.repl.get(queueKey{topic, qid})
		for _, dc := range t.Order.Followers {
			switch {
			case acked[dc] >= want:
			case b.isr.inSync(topic, dc):
				behind = append(behind, fmt.Sprintf("%s holds queue %d up to offset %d, not %d", dc, qid, acked[dc], want))
			default:
				outBehind = true
			}
		}
	}
	if outBehind {
		if err := b.refuseOutOfSync(t, true); err != nil {
			return "", err
		}
	}
	sort.Strings(behind)
	if inSet != "" {
		behind = append(behind, inSet)
	}
	return strings.Join(behind, "; "), nil
}
