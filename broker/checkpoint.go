package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/duomq/duomq/internal/atomicfile"
)

// checkpoint records how far the consume queues and the index are known to
// be complete and flushed. Invariant: DispatchedPos <= the commitlog's
// durable position at the time it was written, and it is a record boundary,
// so recovery may trust everything before it and rebuild everything after.
type checkpoint struct {
	Version       int   `json:"version"`
	DispatchedPos int64 `json:"dispatched-pos"`
}

const checkpointFile = "checkpoint.json"

func loadCheckpoint(dir string) (checkpoint, error) {
	cp := checkpoint{Version: 1}
	b, err := atomicfile.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return cp, err
	}
	if err := json.Unmarshal(b, &cp); err != nil || cp.Version != 1 || cp.DispatchedPos < 0 {
		// A bad checkpoint only costs a longer rebuild: start from zero.
		return checkpoint{Version: 1}, nil
	}
	return cp, nil
}

// writeCheckpoint flushes queues, index and offsets, then records the
// position they cover. The order matters: the checkpoint may only name a
// position whose queue entries are already on disk.
func (b *Broker) writeCheckpoint() error {
	pos := min(b.dispatched.Load(), b.clog.DurablePos())
	if err := b.flushQueues(); err != nil {
		return err
	}
	if err := b.idx.Flush(); err != nil {
		return fmt.Errorf("flush index: %w", err)
	}
	if err := b.offs.Flush(); err != nil {
		return fmt.Errorf("flush consumer offsets: %w", err)
	}
	data, err := json.Marshal(checkpoint{Version: 1, DispatchedPos: pos})
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(b.cfg.DataDir, checkpointFile), data, 0o644)
}

func (b *Broker) flushQueues() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for k, q := range b.queues {
		if err := q.cq.Flush(); err != nil {
			return fmt.Errorf("flush consume queue %s/%d: %w", k.topic, k.id, err)
		}
	}
	return nil
}
