package proxy

import (
	"context"
	"sync"

	"github.com/duomq/duomq/dr/meta"
)

// Ordered sends in flight to a primary that has just been replaced.
//
// When a DC is cut off, an ordered send the proxy forwarded to that DC's
// broker hangs until its deadline (the client's, up to seconds), even
// after the controller promoted the other DC: the client then retries
// only when the attempt times out. The fence watcher ends such sends as
// soon as the cache sees the topic's fencing record name a new primary at
// a newer epoch; sendOrdered then re-reads the record and sends the
// messages to the new primary at once (with the client's idempotency
// flag, so a copy the old primary did store is not stored twice where the
// broker can tell).
//
// Only a new primary at a newer epoch, not blocked, ends sends: a planned
// switchover blocks the topic first, which refuses new writes while those
// in flight finish at the old primary; ending them would only make
// duplicates.

// fenceNotifier is the part of the metadata cache the watcher needs.
type fenceNotifier interface {
	Subscribe() (<-chan struct{}, func())
}

// fences hands out, per ordered topic, a context that ends when the
// topic's primary is replaced.
type fences struct {
	meta Metadata
	mu   sync.Mutex
	gens map[string]*fenceGen
}

type fenceGen struct {
	ctx    context.Context
	cancel context.CancelFunc
	ord    meta.Ordered
}

func newFences(m Metadata) *fences { return &fences{meta: m, gens: map[string]*fenceGen{}} }

// guard returns ctx bounded by the current primary of topic (ord, as the
// send read it) and whether the primary was replaced when the returned
// context ended.
func (f *fences) guard(ctx context.Context, ord meta.Ordered) (context.Context, func() bool, context.CancelFunc) {
	f.mu.Lock()
	g, ok := f.gens[ord.Topic]
	switch {
	case ok && ord.Epoch < g.ord.Epoch:
		// A send with an older record goes to a broker that refuses its
		// epoch; nothing to guard.
		f.mu.Unlock()
		return ctx, func() bool { return false }, func() {}
	case !ok || ord.Epoch > g.ord.Epoch:
		if ok && g.ord.Primary != ord.Primary {
			g.cancel() // sends to the replaced primary
		}
		gctx, gcancel := context.WithCancel(context.Background())
		g = &fenceGen{ctx: gctx, cancel: gcancel, ord: ord}
		f.gens[ord.Topic] = g
	}
	f.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.ctx, cancel)
	return sctx, func() bool { return g.ctx.Err() != nil }, func() { stop(); cancel() }
}

// changed ends the generation of every topic whose primary was replaced.
func (f *fences) changed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for topic, g := range f.gens {
		o, _, ok := f.meta.Ordered(topic)
		if !ok || (o.Epoch > g.ord.Epoch && o.Primary != g.ord.Primary && !o.Blocked) {
			g.cancel()
			delete(f.gens, topic)
		}
	}
}

// run ends generations as the metadata changes, until ctx ends.
func (f *fences) run(ctx context.Context) {
	n, ok := f.meta.(fenceNotifier)
	if !ok {
		return
	}
	ch, unsubscribe := n.Subscribe()
	defer unsubscribe()
	for {
		select {
		case <-ctx.Done():
			return
		case _, open := <-ch:
			if !open {
				return
			}
			f.changed()
		}
	}
}

// close ends every generation.
func (f *fences) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for topic, g := range f.gens {
		g.cancel()
		delete(f.gens, topic)
	}
}
