package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/duomq/duomq/dr/meta"
)

// block writes {from, e+1, blocked}: from here no DC accepts the topic's
// writes (brokers learn it through their watch; proxies stop sending).
func (r *runner) block() error {
	tr := r.t.snapshot(r.tr)
	_, err := r.advance(tr.isBlocked, tr.isStart, func(meta.Ordered) meta.Ordered {
		return meta.Ordered{Topic: tr.Topic, Primary: tr.From, Epoch: tr.BlockEpoch, Blocked: true}
	})
	if err != nil {
		return err
	}
	r.set(func(x *Transition) {
		if x.BlockedAt.IsZero() {
			x.BlockedAt = r.c.clock.Now().UTC()
		}
	})
	return nil
}

// promote writes {to, e+1, unblocked}: the target accepts writes.
func (r *runner) promote() error {
	tr := r.t.snapshot(r.tr)
	from := tr.isStart
	if tr.has(PhaseBlock) {
		from = tr.isBlocked
	}
	_, err := r.advance(tr.isPromoted, from, func(o meta.Ordered) meta.Ordered {
		return meta.Ordered{Topic: tr.Topic, Primary: tr.To, Epoch: o.Epoch + 1}
	})
	return err
}

// setDCState sets a DC's state unless it already has it.
func (r *runner) setDCState(dc string, state meta.DCState) error {
	by := truncate(r.tr.Actor+" via controller "+r.c.cfg.ID, 256)
	return r.t.retry(func(ctx context.Context) error {
		cur, _, err := r.c.store.GetDC(ctx, dc)
		if err != nil || cur.State == state {
			return err
		}
		if _, err := r.c.store.SetDCState(ctx, dc, state, by); err != nil {
			return err
		}
		r.c.log.Info("dc state set", "dc", dc, "state", state, "transition", r.tr.ID)
		return nil
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// fenceResult is one broker's answer to Fence.
type fenceResult struct {
	alive  meta.Alive
	queues []QueueState
	err    error
}

// fenceAll fences the topic at the block epoch on every alive broker of
// the source DC, at once.
func (r *runner) fenceAll() ([]fenceResult, error) {
	tr := r.t.snapshot(r.tr)
	var alive []meta.Alive
	err := r.t.retry(func(ctx context.Context) error {
		var err error
		alive, err = r.c.freshAlive(ctx, tr.From)
		return err
	})
	if err != nil {
		return nil, err
	}
	res := make([]fenceResult, len(alive))
	var wg sync.WaitGroup
	for i, a := range alive {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.t.ctx, r.c.cfg.FenceTimeout)
			defer cancel()
			qs, err := r.c.brokers.Fence(ctx, a.Address, tr.Topic, tr.BlockEpoch)
			res[i] = fenceResult{alive: a, queues: qs, err: err}
		})
	}
	wg.Wait()
	return res, nil
}

// fence fences every alive broker of the source and records each queue's
// end from the broker that leads it (placement: sorted brokers, q mod n).
// Any failure fails the step (and the transition rolls back).
func (r *runner) fence() error {
	res, err := r.fenceAll()
	if err != nil {
		return err
	}
	tr := r.t.snapshot(r.tr)
	if len(res) == 0 {
		return errorf(ErrFenceFailed, "topic %s: %s has no alive broker to fence", tr.Topic, tr.From)
	}
	var errs []error
	for _, f := range res {
		if f.err != nil {
			errs = append(errs, f.err)
		}
	}
	if err := r.t.ctx.Err(); err != nil {
		return errorf(ErrInterrupted, "leadership ended while fencing: %v", err)
	}
	if len(errs) > 0 {
		return errorf(ErrFenceFailed, "fencing topic %s at epoch %d failed: %v", tr.Topic, tr.BlockEpoch, errors.Join(errs...))
	}
	var slots []meta.Slot
	if err := r.t.retry(func(ctx context.Context) error {
		var err error
		slots, err = r.c.freshPlacement(ctx, tr.From)
		return err
	}); err != nil {
		return err
	}
	ends := make([]int64, tr.Queues)
	for q := range ends {
		// Each queue's end comes from the broker that holds it; a queue
		// whose broker is down has an end nobody can read, and moving
		// the topic would lose what that broker holds.
		i := slices.IndexFunc(res, func(f fenceResult) bool { return f.alive.Name == meta.Place(slots, q).Name })
		if len(slots) == 0 || i < 0 {
			return errorf(ErrFenceFailed, "topic %s: queue %d's broker of %s is down", tr.Topic, q, tr.From)
		}
		ends[q] = nextOf(res[i].queues, q)
	}
	r.set(func(x *Transition) { x.Ends = ends })
	return nil
}

// fenceBestEffort fences what it can for a forced failover and records
// the brokers it fenced; the lease wait covers the others.
func (r *runner) fenceBestEffort() error {
	res, err := r.fenceAll()
	if err != nil {
		return err
	}
	var fenced []string
	for _, f := range res {
		if f.err != nil {
			r.c.log.Warn("fence failed; waiting for the broker's lease instead", "topic", r.tr.Topic, "broker", f.alive.Name, "err", f.err)
			continue
		}
		fenced = append(fenced, f.alive.Address)
	}
	r.set(func(x *Transition) { x.Fenced = fenced })
	return nil
}

func nextOf(qs []QueueState, q int) int64 {
	for _, s := range qs {
		if s.Queue == q {
			return s.NextOffset
		}
	}
	return 0
}

// waitLease waits until no broker of the source DC can accept a write of
// the blocked topic: each alive one was fenced or its liveness record is
// gone, or the lease TTL has passed since the block (a broker that did not
// see the block lost its lease by then).
func (r *runner) waitLease() error {
	tr := r.t.snapshot(r.tr)
	deadline := tr.BlockedAt.Add(r.c.cfg.LeaseTTL)
	for {
		changed := r.c.health.changed()
		if allFenced(r.c.health.alive(tr.From), tr.Fenced) {
			return nil
		}
		now := r.c.clock.Now()
		if !now.Before(deadline) {
			return nil
		}
		select {
		case <-changed:
		case <-r.c.clock.After(deadline.Sub(now)):
		case <-r.t.ctx.Done():
			return errorf(ErrInterrupted, "leadership ended waiting for the lease of %s", tr.From)
		}
	}
}

func allFenced(alive []meta.Alive, fenced []string) bool {
	for _, a := range alive {
		if !slices.Contains(fenced, a.Address) {
			return false
		}
	}
	return true
}

// catchUp waits until the target's followers reach the fenced ends, then
// hands the consumer offsets over.
func (r *runner) catchUp() error {
	tr := r.t.snapshot(r.tr)
	deadline := r.c.clock.Now().Add(r.c.cfg.CatchUpTimeout)
	err := r.poll(deadline, func() (bool, string) {
		return r.c.followersHave(r.t.ctx, tr.Topic, tr.To, tr.Ends)
	}, func(detail string) error {
		return errorf(ErrCatchUpTimeout, "topic %s: %s did not reach the fenced ends within %v: %s", tr.Topic, tr.To, r.c.cfg.CatchUpTimeout, detail)
	})
	if err == nil {
		r.c.handOverOffsets(r.t.ctx, tr.Topic, tr.From, tr.To)
	}
	return err
}

// handOverOffsets copies the consumer offsets of topic from the old
// primary's brokers to the new one's right before it is promoted, so
// its consumers start where the old primary's stopped instead of at the
// replicator's last copy (up to its sync interval older: duplicates).
// Best effort: the replicator's copy is the fallback.
func (c *Controller) handOverOffsets(ctx context.Context, topic, from, to string) {
	src, dst := c.placement(from), c.placement(to)
	if len(src) == 0 || len(dst) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.BrokerTimeout)
	defer cancel()
	batches := map[string][]ConsumerOffset{}
	for i, b := range src {
		if !b.Live {
			continue
		}
		os, err := c.brokers.ConsumerOffsets(ctx, b.Alive.Address, topic)
		if err != nil {
			c.log.Warn("consumer offsets not handed over", "topic", topic, "broker", b.Name, "err", err)
			continue
		}
		for _, o := range os {
			if d := meta.Place(dst, o.Queue); o.Queue%len(src) == i && d.Live { // the broker's own queues
				batches[d.Alive.Address] = append(batches[d.Alive.Address], o)
			}
		}
	}
	for addr, batch := range batches {
		if err := c.brokers.SyncConsumerOffsets(ctx, addr, batch); err != nil {
			c.log.Warn("consumer offsets not handed over", "topic", topic, "broker", addr, "err", err)
		}
	}
}

// follow waits, before a failback blocks writes, until the home DC's
// followers have what the current primary had a moment before: its ends
// are read first, then the followers, so steady writes do not keep the
// wait from ending.
func (r *runner) follow() error {
	tr := r.t.snapshot(r.tr)
	deadline := r.c.clock.Now().Add(r.c.cfg.FailbackTimeout)
	return r.poll(deadline, func() (bool, string) {
		ends, err := r.c.queueEnds(r.t.ctx, tr.Topic, tr.From, tr.Queues)
		if err != nil {
			return false, err.Error()
		}
		return r.c.followersHave(r.t.ctx, tr.Topic, tr.To, ends)
	}, func(detail string) error {
		return errorf(ErrCatchUpTimeout, "topic %s: %s did not catch up with %s within %v: %s", tr.Topic, tr.To, tr.From, r.c.cfg.FailbackTimeout, detail)
	})
}

// poll checks cond every PollInterval until it holds or deadline passes.
func (r *runner) poll(deadline time.Time, cond func() (bool, string), timeout func(detail string) error) error {
	for {
		ok, detail := cond()
		if ok {
			return nil
		}
		if err := r.t.ctx.Err(); err != nil {
			return errorf(ErrInterrupted, "leadership ended: %v", err)
		}
		if !r.c.clock.Now().Before(deadline) {
			return timeout(detail)
		}
		select {
		case <-r.c.clock.After(r.c.cfg.PollInterval):
		case <-r.t.ctx.Done():
		}
	}
}

// followersHave reports whether dc's copy of topic has every queue up to
// ends (the follower of queue q is the dc's broker q mod n by name), and
// if not, which queues lag.
func (c *Controller) followersHave(ctx context.Context, topic, dc string, ends []int64) (bool, string) {
	states, alive, err := c.ownerStates(ctx, topic, dc, len(ends))
	if err != nil {
		return false, err.Error()
	}
	var behind []string
	for q, end := range ends {
		st, ok := states[meta.Place(alive, q).Name]
		if !ok {
			behind = append(behind, fmt.Sprintf("queue %d: broker %s is down or did not answer", q, meta.Place(alive, q).Name))
			continue
		}
		if next := nextOf(st.Queues, q); next < end {
			behind = append(behind, fmt.Sprintf("queue %d at %d of %d", q, next, end))
		}
	}
	if len(behind) > 0 {
		return false, strings.Join(behind, ", ")
	}
	return true, ""
}

// queueEnds reads each queue's end from the dc's broker that holds it.
func (c *Controller) queueEnds(ctx context.Context, topic, dc string, queues int) ([]int64, error) {
	states, alive, err := c.ownerStates(ctx, topic, dc, queues)
	if err != nil {
		return nil, err
	}
	ends := make([]int64, queues)
	for q := range ends {
		st, ok := states[meta.Place(alive, q).Name]
		if !ok {
			return nil, errorf(ErrBroker, "topic %s: broker %s of %s is down or did not answer", topic, meta.Place(alive, q).Name, dc)
		}
		ends[q] = nextOf(st.Queues, q)
	}
	return ends, nil
}

// ownerStates asks the live brokers of dc's placement that hold some of
// the queues for their replica state, at once, keyed by broker name;
// brokers that are down or fail are left out.
func (c *Controller) ownerStates(ctx context.Context, topic, dc string, queues int) (map[string]ReplicaState, []meta.Slot, error) {
	slots := c.placement(dc)
	if !meta.AnyLive(slots) {
		return nil, nil, errorf(ErrNoAliveBrokers, "%s has no alive brokers", dc)
	}
	owners := slots
	if queues < len(owners) {
		owners = owners[:queues]
	}
	var mu sync.Mutex
	out := map[string]ReplicaState{}
	var wg sync.WaitGroup
	for _, a := range owners {
		if !a.Live {
			continue
		}
		wg.Go(func() {
			bctx, cancel := context.WithTimeout(ctx, c.cfg.BrokerTimeout)
			defer cancel()
			st, err := c.brokers.ReplicaState(bctx, a.Alive.Address, topic)
			if err != nil {
				c.log.Debug("replica state failed", "broker", a.Name, "topic", topic, "err", err)
				return
			}
			mu.Lock()
			out[a.Name] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	return out, slots, nil
}
