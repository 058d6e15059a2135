package broker

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
)

// popKey names one group's pop state of one queue.
type popKey struct {
	group, topic string
	queue        uint32
}

// inflight is one popped, unsettled message.
type inflight struct {
	gen            uint64 // receipt generation
	attempt        int    // deliveries so far, earlier retry copies included
	maxAttempts    int
	invisibleUntil time.Time
	ordered        bool
	// nack: the invisibility was ended by ChangeInvisibleDuration(0), so
	// the message is delivered again without backoff.
	nack bool
	// waiting (ordered): expired; delivered again in place by the first pop
	// after invisibleUntil (which then includes the backoff).
	waiting bool
	// reviving: a retry or dead-letter copy is being written.
	reviving bool
}

// popQueue is one group's pop state of one queue (see pop.go).
type popQueue struct {
	key popKey

	mu        sync.Mutex
	loaded    bool // committed and next are set
	dropped   bool // reset or topic deleted: replaced by a fresh state
	committed int64
	next      int64
	inflight  map[int64]*inflight
	// nextDue is a lower bound of the invisible-until of the entries the
	// reviver must look at (zero: none); it lets the reviver skip queues.
	nextDue time.Time
}

// popState returns the pop state of k, created if needed.
func (b *Broker) popState(k popKey) *popQueue {
	b.popMu.Lock()
	defer b.popMu.Unlock()
	pq, ok := b.pops[k]
	if !ok {
		pq = &popQueue{key: k, inflight: map[int64]*inflight{}}
		b.pops[k] = pq
	}
	return pq
}

// lockedPopState returns the current pop state of k, locked.
func (b *Broker) lockedPopState(k popKey) *popQueue {
	for {
		pq := b.popState(k)
		pq.mu.Lock()
		if !pq.dropped {
			return pq
		}
		pq.mu.Unlock()
	}
}

// findPopState returns the pop state of k, or nil.
func (b *Broker) findPopState(k popKey) *popQueue {
	b.popMu.Lock()
	defer b.popMu.Unlock()
	return b.pops[k]
}

func (b *Broker) popSnapshot() []*popQueue {
	b.popMu.Lock()
	defer b.popMu.Unlock()
	out := make([]*popQueue, 0, len(b.pops))
	for _, pq := range b.pops {
		out = append(out, pq)
	}
	return out
}

// dropPopState forgets the pop states that match, then runs then (may be
// nil) before any new state can load: a commit made there is what the next
// pop starts from, and no older state commits over it.
func (b *Broker) dropPopState(match func(popKey) bool, then func()) {
	b.popMu.Lock()
	defer b.popMu.Unlock()
	for k, pq := range b.pops {
		if match(k) {
			delete(b.pops, k)
			pq.mu.Lock()
			pq.dropped = true
			pq.mu.Unlock()
		}
	}
	if then != nil {
		then()
	}
}

// syncPopState loads the group's offset on first use and keeps next
// within the queue's offsets. The caller holds pq.mu.
func (b *Broker) syncPopState(pq *popQueue, req PopRequest) error {
	k := pq.key
	minOff, maxOff, err := b.QueueOffsets(k.topic, k.queue)
	if err != nil {
		return err
	}
	if !pq.loaded {
		off, ok := b.offs.Get(k.group, k.topic, k.queue)
		if !ok {
			if off, err = b.initialOffset(req, k, minOff, maxOff); err != nil {
				return err
			}
			b.offs.Commit(k.group, k.topic, k.queue, off)
		}
		pq.committed, pq.next, pq.loaded = off, off, true
	}
	switch {
	case pq.next < minOff: // retention removed what the group had not read
		pq.dropWhere(func(off int64) bool { return off < minOff })
		pq.committed, pq.next = max(pq.committed, minOff), minOff
	case pq.next > maxOff: // the queue was cut back (recovery)
		pq.dropWhere(func(off int64) bool { return off >= maxOff })
		pq.committed, pq.next = min(pq.committed, maxOff), maxOff
	}
	b.commitPop(pq)
	return nil
}

func (b *Broker) initialOffset(req PopRequest, k popKey, minOff, maxOff int64) (int64, error) {
	switch {
	case isSystemTopic(k.topic) || req.InitialPosition == InitialEarliest:
		return minOff, nil
	case req.InitialPosition == InitialTimestamp:
		return b.OffsetForTime(k.topic, k.queue, req.InitialTime)
	}
	return maxOff, nil
}

// commitPop moves committed over the settled prefix and records it. The
// caller holds pq.mu.
func (b *Broker) commitPop(pq *popQueue) {
	for pq.committed < pq.next {
		if _, ok := pq.inflight[pq.committed]; ok {
			break
		}
		pq.committed++
	}
	if !pq.dropped && pq.loaded {
		b.offs.Commit(pq.key.group, pq.key.topic, pq.key.queue, pq.committed)
	}
}

func (pq *popQueue) add(off int64, e *inflight) {
	pq.inflight[off] = e
	pq.lowerNextDue(e.invisibleUntil)
}

func (pq *popQueue) settle(off int64) { delete(pq.inflight, off) }

func (pq *popQueue) dropWhere(match func(int64) bool) {
	for off := range pq.inflight {
		if match(off) {
			delete(pq.inflight, off)
		}
	}
}

func (pq *popQueue) lowerNextDue(t time.Time) {
	if pq.nextDue.IsZero() || t.Before(pq.nextDue) {
		pq.nextDue = t
	}
}

// current returns the in-flight entry that a receipt names, or nil.
func (pq *popQueue) current(r receipt) *inflight {
	e := pq.inflight[r.offset]
	if pq.dropped || e == nil || e.gen != r.gen || e.reviving {
		return nil
	}
	return e
}

// orderedReady returns the in-flight offsets an ordered pop may hand out
// again now, in order; or, while the queue's batch is still out, the time
// to look again.
func (pq *popQueue) orderedReady(now time.Time) ([]int64, time.Time) {
	var ready []int64
	var until time.Time
	for off, e := range pq.inflight {
		t := time.Time{}
		switch {
		case now.Before(e.invisibleUntil):
			t = e.invisibleUntil
		case e.reviving || !e.waiting: // being handled by the reviver
			t = now.Add(10 * time.Millisecond)
		default:
			ready = append(ready, off)
		}
		if t.After(until) {
			until = t
		}
	}
	if !until.IsZero() {
		return nil, until
	}
	slices.Sort(ready)
	return ready, time.Time{}
}

// reconsumeTimes is the deliveries a retry copy's original had.
func reconsumeTimes(m *commitlog.Message) int {
	n, err := strconv.Atoi(m.Properties[PropReconsumeTimes])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
