package commitlog

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// flushLoop is the one goroutine that fsyncs. In sync mode it runs a round
// whenever Append signals written bytes; appends that arrive while a round
// is in its fsync leave a pending signal, so the next round covers all of
// them at once — group commit (gather makes the groups whole). In async
// mode it runs a round every FlushInterval.
func (l *Log) flushLoop() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.opts.FlushMode == FlushAsync {
		t := time.NewTicker(l.opts.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-l.kick:
			l.gather()
		case <-tick:
		}
		l.flush() // a failure is recorded by fail and seen by every waiter
	}
}

// maxGather bounds how long a round waits for the producers the previous
// round released.
const maxGather = time.Millisecond

// gatherState is what the flusher remembers of the last round to decide
// how long the next one waits for appends.
type gatherState struct {
	expect       atomic.Int64 // waiters blocked when the last round ended
	appendsAtEnd atomic.Uint64
	lastFsync    atomic.Int64 // duration of the last round's fsync
}

// gather delays a sync-mode round until the producers released by the
// previous round have appended again, or for at most half an fsync. Without
// it, producers settle into two groups that alternate between fsyncs, each
// covering only half of them; with it, one fsync covers them all. A lone
// producer is not delayed: it is the one append expected.
func (l *Log) gather() {
	want := uint64(l.g.expect.Load())
	if want < 2 {
		return
	}
	timer := time.NewTimer(min(time.Duration(l.g.lastFsync.Load())/2, maxGather))
	defer timer.Stop()
	for l.m.appends.Load()-l.g.appendsAtEnd.Load() < want {
		select {
		case <-l.kick:
		case <-timer.C:
			return
		case <-l.stop:
			return
		}
	}
}

// flush runs one fsync round: everything written when it starts becomes
// durable, or the log fails.
func (l *Log) flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	target, segs, syncDir, err := l.flushPlan()
	if err != nil || segs == nil {
		return err
	}
	start := time.Now()
	err = l.fsync(segs, syncDir)
	releaseAll(segs)
	if err != nil {
		return l.fail(fmt.Errorf("fsync: %w", err))
	}
	elapsed := time.Since(start)
	l.g.expect.Store(l.waiting.Load())
	l.g.appendsAtEnd.Store(l.m.appends.Load())
	l.g.lastFsync.Store(int64(elapsed))
	// flushMu keeps Truncate out, so durable cannot have moved meanwhile.
	l.durable.Store(target)
	l.m.fsyncs.Add(1)
	l.m.fsyncNanos.Add(uint64(elapsed))
	if hook := l.opts.Hooks.OnFsync; hook != nil {
		hook(elapsed)
	}
	l.notify(true)
	return nil
}

// flushPlan takes, under the append lock, the target of a round and
// references on the segments holding the bytes not yet durable. segs is nil
// when there is nothing to do.
func (l *Log) flushPlan() (target int64, segs []*segment, syncDir bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failed(); err != nil {
		return 0, nil, false, err
	}
	target, durable := l.written.Load(), l.durable.Load()
	if target == durable && !l.dirDirty {
		return 0, nil, false, nil
	}
	syncDir, l.dirDirty = l.dirDirty, false
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	if len(l.segs) == 0 {
		return 0, nil, false, ErrClosed
	}
	for _, s := range l.segs[segmentIndex(l.segs, max(durable, l.segs[0].base)):] {
		s.acquire()
		segs = append(segs, s)
	}
	return target, segs, syncDir, nil
}

// fsync syncs the files oldest first, then the directory when segments
// were created, after the BeforeFsync fault point.
func (l *Log) fsync(segs []*segment, syncDir bool) error {
	if hook := l.opts.Hooks.BeforeFsync; hook != nil {
		if err := hook(); err != nil {
			return err
		}
	}
	for _, s := range segs {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
	}
	if syncDir {
		if err := l.fs.SyncDir(l.opts.Dir); err != nil {
			return fmt.Errorf("%s: %w", l.opts.Dir, err)
		}
	}
	return nil
}

// WaitDurable waits until an fsync covers every byte below pos. In sync
// mode it blocks, sharing fsync rounds with every other waiter; in async
// mode it returns at once. It returns the fsync error (wrapping
// ErrLogFailed) if a round failed, ctx's error if ctx ends first, and
// ErrClosed if the log closed without pos becoming durable. Bytes already
// durable are reported durable even after Close or a later failure.
func (l *Log) WaitDurable(ctx context.Context, pos int64) error {
	if l.durable.Load() >= pos {
		return nil
	}
	if l.opts.FlushMode == FlushAsync {
		return l.asyncDurable()
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	for {
		ch := l.durableWait() // taken before the checks, so no wakeup is missed
		if l.durable.Load() >= pos {
			return nil
		}
		if err := l.failed(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-l.shutdown:
			if l.durable.Load() >= pos {
				return nil
			}
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// asyncDurable is WaitDurable's answer in async mode, where nobody waits
// for fsyncs: only a failed or closed log is worth reporting.
func (l *Log) asyncDurable() error {
	if err := l.failed(); err != nil {
		return err
	}
	if l.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Sync fsyncs everything written so far and returns when it is durable.
func (l *Log) Sync() error {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.flush()
}
