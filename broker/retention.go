package broker

import (
	"fmt"
	"time"
)

// applyRetention deletes whole commitlog segments past the age or size
// budget (never the one being written), then moves every queue's min
// offset past the removed data and drops index files that only covered it.
func (b *Broker) applyRetention() error {
	n, err := b.clog.Retain(b.cfg.RetentionAge, b.cfg.RetentionBytes, time.Now())
	if err != nil {
		return fmt.Errorf("commitlog retention: %w", err)
	}
	if n == 0 {
		return nil
	}
	minPos := b.clog.MinPos()
	// The write lock keeps the dispatcher (the queues' other writer) out.
	b.mu.Lock()
	for k, q := range b.queues {
		if err := q.cq.SetMinLogPos(minPos); err != nil {
			b.mu.Unlock()
			return fmt.Errorf("consume queue %s/%d retention: %w", k.topic, k.id, err)
		}
	}
	b.mu.Unlock()
	b.log.Info("retention deleted segments", "segments", n, "min-pos", minPos)
	return b.idx.DeleteBelow(minPos)
}

// RunRetention applies retention now (operators and tests).
func (b *Broker) RunRetention() error { return b.applyRetention() }
