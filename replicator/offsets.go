package replicator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/dr/meta"
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
	slotted            bool // queue 0 of each broker, into queue i (queueRef.slotted)
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
	out := batches{}
	var errs []error
	for ref, leader := range r.followed() {
		if ref.standby != "" {
			continue // copied by syncStandbyOffsets
		}
		refs[copyRef{ref.topic, ref.dst, leader, ref.slotted}] = true
	}
	errs = append(errs, r.syncStandbyOffsets(ctx, out))
	for c := range refs {
		if !meta.AnyLive(r.src.Placement(c.leader)) {
			continue // the leading DC is down: nothing to copy from or to
		}
		if c.slotted {
			errs = append(errs, r.collectSlotted(ctx, c.leader, c.topic, r.cfg.DC, c.dst, out, true))
			errs = append(errs, r.collectSlotted(ctx, r.cfg.DC, c.dst, c.leader, c.topic, out, false))
			continue
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

// collect lists the offsets of topic on fromDC's live brokers (each
// broker's own queues, meta.Place) and adds them to out for the brokers of toDC that
// hold the same queues of dst.
func (r *Replicator) collect(ctx context.Context, fromDC, topic, toDC, dst string, out batches) error {
	srcs := r.src.Placement(fromDC)
	if !meta.AnyLive(srcs) {
		return fmt.Errorf("topic %s: no live broker in %s", topic, fromDC)
	}
	var errs []error
	for i, src := range srcs {
		if !src.Live {
			continue // its queues' offsets are where it left them
		}
		offs, err := r.listOffsets(ctx, src, topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range offs {
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

// collectSlotted is collect for a group's retry or dead-letter topic:
// forward, queue 0 of fromDC's broker i goes to queue i of dst on toDC's
// broker i; backward (from the mirror), queue i of the mirror on fromDC's
// broker i goes to queue 0 of topic on toDC's broker i.
func (r *Replicator) collectSlotted(ctx context.Context, fromDC, topic, toDC, dst string, out batches, forward bool) error {
	srcs, dsts := r.src.Placement(fromDC), r.src.Placement(toDC)
	if !meta.AnyLive(srcs) {
		return fmt.Errorf("topic %s: no live broker in %s", topic, fromDC)
	}
	var errs []error
	for i, src := range srcs {
		if !src.Live {
			continue
		}
		offs, err := r.listOffsets(ctx, src, topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// The slot the records belong to: the source broker's own in the
		// forward direction, the mirror queue's in the backward one.
		for _, o := range offs {
			slot, queue := i, o.GetQueueId()
			if forward {
				if o.GetQueueId() != 0 {
					continue
				}
				queue = uint32(i)
			} else {
				if int(o.GetQueueId())%len(srcs) != i {
					continue // not this broker's mirror queue
				}
				slot, queue = int(o.GetQueueId()), 0
			}
			if len(dsts) == 0 || !meta.Place(dsts, slot).Live {
				continue
			}
			to := meta.Place(dsts, slot).Alive.Address
			out[to] = append(out[to], &brokerpb.ConsumerOffset{Group: o.GetGroup(), Topic: dst, QueueId: queue, Offset: o.GetOffset()})
		}
	}
	return errors.Join(errs...)
}

// listOffsets lists the committed offsets of topic on a live broker.
func (r *Replicator) listOffsets(ctx context.Context, src meta.Slot, topic string) ([]*brokerpb.ConsumerOffset, error) {
	c, err := r.dial.Client(src.Alive.Address)
	if err != nil {
		return nil, err
	}
	res, err := c.ListConsumerOffsets(ctx, &brokerpb.ListConsumerOffsetsRequest{Topic: topic})
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s on %s: %w", topic, src.Name, err)
	}
	return res.GetOffsets(), nil
}
