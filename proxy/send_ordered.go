package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/rpcerr"
)

// errStale marks a batch the broker refused for its epoch; errNotLeader,
// also errStale, one refused because the broker no longer leads the
// topic at that epoch (blocked for a switchover, or moved).
var (
	errStale     = errors.New("stale epoch")
	errNotLeader = fmt.Errorf("%w: not the leader", errStale)
)

// sendOrdered writes each message to the queue its sharding key hashes to,
// in the topic's primary DC only, stamped with the topic's epoch. A broker
// that refuses the epoch means the proxy's metadata is behind: the record
// is re-read and the refused messages are sent once more.
func (p *Proxy) sendOrdered(ctx context.Context, t meta.Topic, msgs []*brokerpb.MessageInput, idempotent bool) ([]*proxypb.SendResult, error) {
	ord, _, ok := p.meta.Ordered(t.Name)
	if !ok {
		return nil, errorf(ErrPrimaryUnavailable, "ordered topic %q has no fencing record (ordered/%s) in the metadata yet", t.Name, t.Name)
	}
	if ord.Blocked {
		return nil, blockedErr(ord)
	}
	results := make([]*proxypb.SendResult, len(msgs))
	all := make([]int, len(msgs))
	for i := range all {
		all[i] = i
	}
	sctx, replaced, done := p.fences.guard(ctx, ord)
	err := p.sendOrderedOnce(sctx, t, ord, msgs, all, results, idempotent)
	done()
	if err != nil && ctx.Err() == nil && replaced() {
		err = fmt.Errorf("%w: primary %s replaced while the send was in flight: %v", errNotLeader, ord.Primary, err)
	}
	if !errors.Is(err, errStale) {
		return results, err
	}
	p.metrics.staleEpochs.WithLabelValues(t.Name).Inc()
	fresh, ferr := p.freshOrdered(ctx, t.Name, ord.Epoch)
	if ferr != nil && errors.Is(err, errNotLeader) {
		return nil, errorf(ErrPrimaryUnavailable, "ordered topic %q is changing primary (its brokers refuse epoch %d); retry shortly", t.Name, ord.Epoch)
	}
	if ferr != nil {
		return nil, ferr
	}
	if fresh.Blocked {
		return nil, blockedErr(fresh)
	}
	p.log.Info("ordered send retried with a newer epoch", "topic", t.Name, "epoch", ord.Epoch, "new-epoch", fresh.Epoch, "primary", fresh.Primary)
	err = p.sendOrderedOnce(ctx, t, fresh, msgs, pendingIndexes(results), results, idempotent)
	if errors.Is(err, errStale) {
		return nil, errorf(ErrStaleEpoch, "ordered topic %q: the broker refused epoch %d, the newest in the metadata: %v", t.Name, fresh.Epoch, err)
	}
	return results, err
}

// blockedErr says an ordered topic takes no writes while it moves.
func blockedErr(o meta.Ordered) error {
	return errorf(ErrPrimaryUnavailable, "ordered topic %q is blocked at epoch %d while its primary moves from %s; retry shortly", o.Topic, o.Epoch, o.Primary)
}

// freshOrdered returns the topic's fencing record once it is newer than
// epoch: read from the store, else awaited in the cache for a second.
func (p *Proxy) freshOrdered(ctx context.Context, topic string, epoch uint64) (meta.Ordered, error) {
	if p.ordered != nil {
		o, _, err := p.ordered.GetOrdered(ctx, topic)
		if err != nil {
			return o, errorf(ErrPrimaryUnavailable, "ordered topic %q: re-reading its epoch after a stale-epoch refusal: %v", topic, err)
		}
		if o.Epoch <= epoch {
			return o, errorf(ErrStaleEpoch, "ordered topic %q: the broker refused epoch %d, which is the metadata's newest", topic, epoch)
		}
		return o, nil
	}
	deadline := p.now().Add(time.Second)
	for {
		if o, _, ok := p.meta.Ordered(topic); ok && o.Epoch > epoch {
			return o, nil
		}
		if p.now().After(deadline) || ctx.Err() != nil {
			return meta.Ordered{}, errorf(ErrStaleEpoch, "ordered topic %q: the broker refused epoch %d and the metadata has no newer one", topic, epoch)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orderedPlacement is where logical queue q of an ordered topic lives:
// broker q mod n of the primary DC's registered brokers sorted by name
// (meta.Place), queue q.
func orderedPlacement(brokers []brokerRef, q uint32) brokerRef {
	return brokers[int(q)%len(brokers)]
}

// orderedBrokers are the primary DC's placement (meta.Place: its
// registered brokers, as the replicators and the controller see them; a
// broker that is down has no address), with the route's queue count and permission where the route lists the
// broker. A broker the route does not list yet (its registration of the
// topic is on its way) is tried anyway: it refuses what it cannot take,
// whereas placing its queues on another broker would split them.
func (p *Proxy) orderedBrokers(ctx context.Context, t meta.Topic, dc string) ([]brokerRef, error) {
	slots := p.meta.Placement(dc)
	if !meta.AnyLive(slots) {
		return p.brokersOf(ctx, t.Name, dc)
	}
	routed, err := p.brokersOf(ctx, t.Name, dc)
	if err != nil {
		return nil, err
	}
	out := make([]brokerRef, len(slots))
	for i, s := range slots {
		if !s.Live {
			out[i] = brokerRef{DC: dc, Name: s.Name} // down: no address, no permission
			continue
		}
		a := s.Alive
		out[i] = brokerRef{DC: dc, Name: a.Name, Addr: a.Address, Queues: uint32(t.Queues), Perm: uint32(brokerpb.Permission_PERMISSION_READ_WRITE)}
		for _, r := range routed {
			if r.Name == a.Name {
				out[i] = r
			}
		}
	}
	return out, nil
}

// sendOrderedOnce sends the messages idx grouped by logical queue. It
// returns errStale (wrapping the broker's refusal) when some group was
// refused for its epoch, after the other groups finished.
func (p *Proxy) sendOrderedOnce(ctx context.Context, t meta.Topic, ord meta.Ordered, msgs []*brokerpb.MessageInput, idx []int, results []*proxypb.SendResult, idempotent bool) error {
	brokers, err := p.orderedBrokers(ctx, t, ord.Primary)
	if err != nil {
		return errorf(ErrPrimaryUnavailable, "ordered topic %q: %v (ordered topics never fall back to another DC)", t.Name, err)
	}
	if len(brokers) == 0 {
		return errorf(ErrPrimaryUnavailable, "ordered topic %q: no broker of its primary DC %s hosts it (ordered topics never fall back to another DC)", t.Name, ord.Primary)
	}
	groups := map[uint32][]int{}
	for _, i := range idx {
		q := hash32(msgs[i].GetShardingKey()) % uint32(max(t.Queues, 1))
		groups[q] = append(groups[q], i)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		stale error
	)
	for q, gi := range groups {
		wg.Go(func() {
			err := p.sendOrderedGroup(ctx, t, ord, orderedPlacement(brokers, q), q, msgs, gi, results, idempotent)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
			case errors.Is(err, errStale):
				stale = err
			case first == nil:
				first = err
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return stale
}

func (p *Proxy) sendOrderedGroup(ctx context.Context, t meta.Topic, ord meta.Ordered, b brokerRef, q uint32, msgs []*brokerpb.MessageInput, idx []int, results []*proxypb.SendResult, idempotent bool) error {
	batch := make([]*brokerpb.MessageInput, len(idx))
	for j, i := range idx {
		batch[j] = msgs[i]
	}
	if b.Addr == "" {
		return errorf(ErrPrimaryUnavailable, "ordered topic %q: queue %d lives on broker %s of the primary DC %s, which is down; it is writable again when the broker returns or the topic fails over; ordered topics never fall back to another DC",
			t.Name, q, b.Name, b.DC)
	}
	if !b.writable() || q >= b.Queues {
		return errorf(ErrPrimaryUnavailable, "ordered topic %q: queue %d lives on broker %s of %s, which does not take writes of it now (queues %d, permission %d); ordered topics never fall back to another DC",
			t.Name, q, b.Name, b.DC, b.Queues, b.Perm)
	}
	res, err := p.brokerSend(ctx, b, &brokerpb.SendRequest{Topic: t.Name, QueueId: int32(q), Messages: batch, Epoch: ord.Epoch, Idempotent: idempotent})
	switch {
	case err == nil:
		for j, i := range idx {
			results[i] = sendResult(t.Name, b, res.GetResults()[j])
		}
		return nil
	case rpcerr.Reason(err) == reasonBrokerStaleEpoch:
		return fmt.Errorf("%w: broker %s: %v", errStale, b.Name, err)
	case rpcerr.Reason(err) == reasonBrokerNotLeader:
		return fmt.Errorf("%w: broker %s: %v", errNotLeader, b.Name, err)
	case brokerFailed(err):
		return errorf(ErrPrimaryUnavailable, "ordered topic %q: queue %d lives on broker %s of the primary DC %s, which is failing: %v; ordered topics never fall back to another DC",
			t.Name, q, b.Name, b.DC, err)
	}
	return err
}
