package replicator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
)

// syncOffsetsLoop copies consumer offsets of followed queues every
// offset-sync-interval.
func (r *Replicator) syncOffsetsLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.OffsetSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		if err := r.SyncOffsets(ctx); err != nil {
			if ctx.Err() == nil {
				r.m.errors.WithLabelValues("offset-sync").Inc()
				r.log.Debug("consumer offsets not fully synced", "err", err)
			}
			continue
		}
		r.offsetSynced.Store(start.UnixNano())
	}
}

// copyRef is one topic copied here from a leading DC: the topic itself
// (ordered) or its mirror (unordered).
type copyRef struct {
	topic, dst, leader string
}

// batches gathers offsets per receiving broker address.
type batches map[string][]*brokerpb.ConsumerOffset

// SyncOffsets makes one pass. For every followed topic, the committed
// offsets on the leading DC's brokers (each broker's own queues) go to
// this DC's copy; for a mirror, the offsets committed on the mirror here
// (its DC was down and consumers here read it) also go back to the source
// DC. A broker raises an offset only, and never on a queue its own
// consumers use.
func (r *Replicator) SyncOffsets(ctx context.Context) error {
	refs := map[copyRef]bool{}
	for ref, leader := range r.followed() {
		refs[copyRef{ref.topic, ref.dst, leader}] = true
	}
	out := batches{}
	var errs []error
	for c := range refs {
		if len(r.src.Brokers(c.leader)) == 0 {
			continue // the leading DC is down: nothing to copy from or to
		}
		errs = append(errs, r.collect(ctx, c.leader, c.topic, r.cfg.DC, c.dst, out))
		if c.dst != c.topic {
			errs = append(errs, r.collect(ctx, r.cfg.DC, c.dst, c.leader, c.topic, out))
		}
	}
	for addr, batch := range out {
		c, err := r.dial.Client(addr)
		if err == nil {
			_, err = c.SyncConsumerOffsets(ctx, &brokerpb.SyncConsumerOffsetsRequest{Offsets: batch})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sync offsets to %s: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}

// collect lists the offsets of topic on fromDC's brokers (each broker's
// own queues, q mod n) and adds them to out for the brokers of toDC that
// hold the same queues of dst.
func (r *Replicator) collect(ctx context.Context, fromDC, topic, toDC, dst string, out batches) error {
	srcs := r.src.Brokers(fromDC)
	if len(srcs) == 0 {
		return fmt.Errorf("topic %s: no live broker in %s", topic, fromDC)
	}
	var errs []error
	for i, src := range srcs {
		c, err := r.dial.Client(src.Address)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res, err := c.ListConsumerOffsets(ctx, &brokerpb.ListConsumerOffsetsRequest{Topic: topic})
		if err != nil {
			errs = append(errs, fmt.Errorf("list offsets of %s on %s: %w", topic, src.Name, err))
			continue
		}
		for _, o := range res.GetOffsets() {
			if int(o.GetQueueId())%len(srcs) != i {
				continue // not this broker's queue: its offsets are not authoritative
			}
			to, err := r.brokerFor(toDC, o.GetQueueId())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out[to.Address] = append(out[to.Address], &brokerpb.ConsumerOffset{Group: o.GetGroup(), Topic: dst, QueueId: o.GetQueueId(), Offset: o.GetOffset()})
		}
	}
	return errors.Join(errs...)
}
