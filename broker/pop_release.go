package broker

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// Releasing a lost pop.
//
// A pop's answer can be lost after the broker popped its messages: the
// caller's deadline passes or its call is cancelled (a proxy's long poll
// ends the other brokers' calls once one answers) while the answer is on
// its way. Pop hands messages back itself when it sees the caller gone
// before it answers; for the window after, a caller names each pop
// (PopRequest.PopID) and, when the call ended in an error that may have
// hidden an answer, asks ReleasePop to make that pop's messages visible
// again. The broker remembers the receipts of the last maxRecentPops
// named pops for recentPopTTL; a message settled since (acked, its
// invisibility changed, redelivered) keeps its newer state: its old
// receipt is stale and is skipped.

const (
	maxRecentPops = 4096
	recentPopTTL  = 2 * time.Minute
)

type recentPop struct {
	id       string
	group    string
	at       time.Time
	receipts []poppedReceipt
}

type poppedReceipt struct{ topic, handle string }

// recentPops is a bounded, insertion-ordered map of named pops.
type recentPops struct {
	mu    sync.Mutex
	order *list.List // of *recentPop, oldest first
	byID  map[string]*list.Element
}

func newRecentPops() *recentPops {
	return &recentPops{order: list.New(), byID: map[string]*list.Element{}}
}

func (r *recentPops) add(id, group string, out []PoppedMessage) {
	rp := &recentPop{id: id, group: group, at: time.Now()}
	for _, m := range out {
		rp.receipts = append(rp.receipts, poppedReceipt{m.Message.Topic, m.ReceiptHandle})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byID[id]; ok { // a reused id: the latest pop wins
		r.order.Remove(e)
	}
	r.byID[id] = r.order.PushBack(rp)
	for r.order.Len() > maxRecentPops || (r.order.Len() > 0 && time.Since(r.order.Front().Value.(*recentPop).at) > recentPopTTL) {
		old := r.order.Remove(r.order.Front()).(*recentPop)
		delete(r.byID, old.id)
	}
}

// take removes and returns the pop named id.
func (r *recentPops) take(id string) (*recentPop, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[id]
	if !ok {
		return nil, false
	}
	delete(r.byID, id)
	return r.order.Remove(e).(*recentPop), true
}

// ReleasePop makes the messages of the recent pop named id visible again,
// those still in flight under that pop, and returns how many. An unknown
// id (never named, released already, or forgotten) releases nothing.
func (b *Broker) ReleasePop(id string) (int, error) {
	if id == "" {
		return 0, fmt.Errorf("%w: empty pop id", ErrInvalidArgument)
	}
	rp, ok := b.recentPops.take(id)
	if !ok {
		return 0, nil
	}
	n := 0
	for _, r := range rp.receipts {
		if _, err := b.ChangeInvisibleDuration(rp.group, r.topic, r.handle, 0); err == nil {
			n++
		}
	}
	if n > 0 {
		b.metrics.popsReleased.Add(float64(n))
		b.log.Info("released a lost pop", "group", rp.group, "messages", n)
	}
	return n, nil
}
