package broker

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/duomq/duomq/internal/names"
)

// receipt names one pop of one message; see pop.go.
type receipt struct {
	broker, topic string
	queue         uint32
	offset        int64
	gen           uint64
}

// receiptVersion is the first field of every receipt handle.
const receiptVersion = "1"

// String is the opaque handle: base64url of the space-separated fields
// (names never contain spaces).
func (r receipt) String() string {
	s := strings.Join([]string{receiptVersion, r.broker, r.topic,
		strconv.FormatUint(uint64(r.queue), 10), strconv.FormatInt(r.offset, 10), strconv.FormatUint(r.gen, 10)}, " ")
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// parseReceipt decodes a handle; any malformed one is ErrInvalidArgument.
func parseReceipt(h string) (receipt, error) {
	bad := func(why string) (receipt, error) {
		return receipt{}, fmt.Errorf("%w: receipt handle is malformed (%s)", ErrInvalidArgument, why)
	}
	if h == "" {
		return bad("empty")
	}
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return bad("not base64url")
	}
	f := strings.Split(string(raw), " ")
	if len(f) != 6 || f[0] != receiptVersion {
		return bad("unknown layout")
	}
	q, err1 := strconv.ParseUint(f[3], 10, 32)
	off, err2 := strconv.ParseInt(f[4], 10, 64)
	gen, err3 := strconv.ParseUint(f[5], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || off < 0 || f[1] == "" || f[2] == "" {
		return bad("bad field")
	}
	return receipt{broker: f[1], topic: f[2], queue: uint32(q), offset: off, gen: gen}, nil
}

// newGen returns a receipt generation never returned before (see pop.go).
func (b *Broker) newGen() uint64 { return b.popGen.Add(1) }

// checkReceipt validates an Ack's or ChangeInvisibleDuration's names and
// handle, and returns the pop state the handle belongs to (nil: none).
func (b *Broker) checkReceipt(group, topic, handle string) (receipt, *popQueue, error) {
	if b.isClosed() {
		return receipt{}, nil, ErrClosed
	}
	if err := names.Group(group); err != nil {
		return receipt{}, nil, fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	r, err := parseReceipt(handle)
	if err != nil {
		return r, nil, err
	}
	if r.broker != b.cfg.Name {
		return r, nil, fmt.Errorf("%w: receipt handle of broker %s sent to broker %s", ErrInvalidArgument, r.broker, b.cfg.Name)
	}
	if r.topic != topic {
		return r, nil, fmt.Errorf("%w: receipt handle of topic %q used for topic %q", ErrInvalidArgument, r.topic, topic)
	}
	if _, err := b.queueOf(topic, r.queue); err != nil {
		return r, nil, err
	}
	return r, b.findPopState(popKey{group, topic, r.queue}), nil
}

func (b *Broker) staleReceipt(group string, r receipt) error {
	return fmt.Errorf("%w: message %s/%d@%d of group %q is no longer in flight under this receipt (acked, delivered again, its invisibility changed, or the broker restarted)",
		ErrStaleReceipt, r.topic, r.queue, r.offset, group)
}

// Ack settles a popped message; the group's committed offset moves past
// every settled message before the first unsettled one.
func (b *Broker) Ack(group, topic, handle string) error {
	r, pq, err := b.checkReceipt(group, topic, handle)
	if err != nil {
		return err
	}
	if pq == nil {
		return b.staleReceipt(group, r)
	}
	pq.mu.Lock()
	e := pq.current(r)
	if e == nil {
		pq.mu.Unlock()
		return b.staleReceipt(group, r)
	}
	pq.settle(r.offset)
	b.commitPop(pq)
	pq.mu.Unlock()
	b.metrics.acked.Inc()
	if e.ordered {
		b.wake() // the queue's batch may be settled: waiting ordered pops look again
	}
	return nil
}

// ChangeInvisibleDuration makes a popped message invisible for d from now
// and returns its new receipt handle (the old one becomes stale). d = 0 is
// a negative acknowledgement: the message is delivered again at once,
// without backoff (through the retry topic, or in place for an ordered
// group).
func (b *Broker) ChangeInvisibleDuration(group, topic, handle string, d time.Duration) (string, error) {
	if d < 0 || d > MaxInvisible {
		return "", fmt.Errorf("%w: invisible duration %v not in [0, %v]", ErrInvalidArgument, d, MaxInvisible)
	}
	r, pq, err := b.checkReceipt(group, topic, handle)
	if err != nil {
		return "", err
	}
	if pq == nil {
		return "", b.staleReceipt(group, r)
	}
	now := time.Now()
	pq.mu.Lock()
	e := pq.current(r)
	if e == nil {
		pq.mu.Unlock()
		return "", b.staleReceipt(group, r)
	}
	e.gen, e.invisibleUntil, e.nack, e.waiting = b.newGen(), now.Add(d), d == 0, false
	pq.lowerNextDue(e.invisibleUntil)
	r.gen = e.gen
	pq.mu.Unlock()
	if d == 0 {
		b.revive(pq, now)
		b.wake()
	}
	return r.String(), nil
}
