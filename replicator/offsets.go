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

// SyncOffsets makes one pass: for every followed topic, the committed
// offsets on the leading DC's brokers (each broker's own queues) are sent
// in one batch per local broker, which raises them where its own
// consumers do not use the queue.
func (r *Replicator) SyncOffsets(ctx context.Context) error {
	leaders := map[string]string{} // topic -> leading DC
	for ref, leader := range r.followed() {
		leaders[ref.topic] = leader
	}
	batches := map[string][]*brokerpb.ConsumerOffset{} // local broker address -> offsets
	var errs []error
	for topic, leader := range leaders {
		errs = append(errs, r.collectOffsets(ctx, topic, leader, batches))
	}
	for addr, batch := range batches {
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

func (r *Replicator) collectOffsets(ctx context.Context, topic, leader string, batches map[string][]*brokerpb.ConsumerOffset) error {
	srcs := r.src.Brokers(leader)
	if len(srcs) == 0 {
		return fmt.Errorf("topic %s: no live broker in %s", topic, leader)
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
			dst, err := r.brokerFor(r.cfg.DC, o.GetQueueId())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			batches[dst.Address] = append(batches[dst.Address], o)
		}
	}
	return errors.Join(errs...)
}
