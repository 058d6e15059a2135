package commitlog

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/duomq/duomq/internal/vfs"
)

// Log is an append-only log of framed records stored in segment files.
// All methods are safe for concurrent use.
//
// Lock order: flushMu → mu → segMu → notifyMu. Readers take only segMu (a
// read lock, held just long enough to find and reference a segment), so a
// running fsync or a slow reader never holds up Append.
type Log struct {
	opts   Options
	fs     vfs.FS
	logger *slog.Logger
	maxRec int

	// flushMu serializes fsync rounds and Truncate, so that durable only
	// moves backwards under Truncate and never races a round in flight.
	flushMu sync.Mutex

	// mu serializes Append, rolls, Truncate, Retain and Close.
	mu       sync.Mutex
	active   *segment // the segment being written; last of segs
	dirDirty bool     // a segment file was created since the last fsync round
	wbuf     []byte   // Append's coalescing buffer, reused

	segMu sync.RWMutex
	segs  []*segment // sorted by base, contiguous

	written atomic.Int64 // end of the bytes readers may see
	durable atomic.Int64 // end of the bytes covered by an fsync
	minPos  atomic.Int64
	closed  atomic.Bool
	failure atomic.Pointer[error] // first write or fsync error; sticky

	notifyMu  sync.Mutex
	changed   chan struct{} // closed when written or durable moves; nil until asked for
	durableCh chan struct{} // closed when durable moves or the log fails; nil until asked for

	kick     chan struct{} // sync mode: bytes were written, run an fsync round
	stop     chan struct{} // closed by Close to stop the flusher
	done     chan struct{} // closed by the flusher when it exits
	shutdown chan struct{} // closed when Close has finished its final fsync

	closeOnce sync.Once

	m       counters
	waiting atomic.Int64 // goroutines blocked in WaitDurable
	g       gatherState
}

// counters are the cumulative Metrics fields.
type counters struct {
	appends, appendedBytes, fsyncs, fsyncNanos atomic.Uint64
	corruptRecords, truncatedTails             atomic.Uint64
}

// Metrics is a snapshot of a Log's state and counters.
type Metrics struct {
	Segments       int    // segment files in the log
	DiskBytes      int64  // bytes stored, from MinPos to WrittenPos
	Appends        uint64 // records appended
	AppendedBytes  uint64 // bytes appended (framing included)
	Fsyncs         uint64 // fsync rounds (each may sync several files)
	FsyncNanos     uint64 // total time spent in fsync rounds
	CorruptRecords uint64 // bad records found by reads
	TruncatedTails uint64 // torn or corrupt tails cut by recovery
}

// AppendResult tells where the records of one Append went.
type AppendResult struct {
	Positions []int64 // Positions[i] is the logical position of record i
	Sizes     []int32 // Sizes[i] is its length in bytes
	End       int64   // position after the last byte written
}

// Open opens the log in opts.Dir, creating the directory if needed, and
// recovers it: the records from the recovery start (see
// Options.RecoverFrom) are checked one by one, a torn or corrupt tail is
// truncated (logged and counted in Metrics.TruncatedTails) and segment
// files beyond it are deleted. What remains is fsynced before Open returns,
// so DurablePos starts equal to WrittenPos.
func Open(opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	l := &Log{
		opts:     opts,
		fs:       opts.FS,
		logger:   opts.Logger.With("subsystem", "commitlog", "dir", opts.Dir),
		maxRec:   opts.maxRecord(),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		shutdown: make(chan struct{}),
	}
	if err := l.fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("commitlog: create dir: %w", err)
	}
	if err := l.recover(); err != nil {
		releaseAll(l.segs)
		return nil, err
	}
	go l.flushLoop()
	return l, nil
}

// WrittenPos is the end of the written bytes: every record below it can be
// read, though it may not be durable yet.
func (l *Log) WrittenPos() int64 { return l.written.Load() }

// DurablePos is the end of the fsynced bytes. In async mode it advances on
// every interval fsync.
func (l *Log) DurablePos() int64 { return l.durable.Load() }

// MinPos is the first position still stored: the base of the oldest segment.
func (l *Log) MinPos() int64 { return l.minPos.Load() }

// Changed returns a channel closed the next time WrittenPos or DurablePos
// moves, the log fails, or it closes. Each call after a change returns a
// new channel, so callers re-check their condition and then call it again.
func (l *Log) Changed() <-chan struct{} {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	if l.closed.Load() {
		// Nothing will move again: wake the caller at once so that it finds
		// out from its next call that the log is closed.
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.changed
}

// notify wakes the Changed channel, and the durability waiters too when
// durable is set. Channels are made only when someone waits, so an Append
// with no listener pays one uncontended lock.
func (l *Log) notify(durable bool) {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	if durable && l.durableCh != nil {
		close(l.durableCh)
		l.durableCh = nil
	}
}

// durableWait returns the channel the next durability change closes.
func (l *Log) durableWait() <-chan struct{} {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	if l.durableCh == nil {
		l.durableCh = make(chan struct{})
	}
	return l.durableCh
}

// fail records the first write or fsync error, after which the log accepts
// no more appends, and wakes every waiter so that it sees the error.
func (l *Log) fail(err error) error {
	wrapped := fmt.Errorf("%w: %w", ErrLogFailed, err)
	if l.failure.CompareAndSwap(nil, &wrapped) {
		l.logger.Error("commit log failed; refusing appends until reopened", "err", err)
	}
	l.notify(true)
	return *l.failure.Load()
}

// failed returns the sticky failure, or nil.
func (l *Log) failed() error {
	if p := l.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// usable reports why the log cannot take a write, or nil.
func (l *Log) usable() error {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.failed()
}

// Metrics returns a snapshot of the log's state and counters.
func (l *Log) Metrics() Metrics {
	l.segMu.RLock()
	n := len(l.segs)
	l.segMu.RUnlock()
	return Metrics{
		Segments:       n,
		DiskBytes:      l.written.Load() - l.minPos.Load(),
		Appends:        l.m.appends.Load(),
		AppendedBytes:  l.m.appendedBytes.Load(),
		Fsyncs:         l.m.fsyncs.Load(),
		FsyncNanos:     l.m.fsyncNanos.Load(),
		CorruptRecords: l.m.corruptRecords.Load(),
		TruncatedTails: l.m.truncatedTails.Load(),
	}
}

// Close fsyncs what was written, stops the flusher and closes the files.
// Appends fail with ErrClosed from the moment Close starts. A second call
// does nothing and returns nil.
func (l *Log) Close() error {
	var err error
	l.closeOnce.Do(func() { err = l.close() })
	return err
}

func (l *Log) close() error {
	l.mu.Lock()
	l.closed.Store(true)
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	// A failed log reports its failure rather than pretending to sync.
	err := l.flush()
	close(l.shutdown)
	l.notify(true)
	l.segMu.Lock()
	segs := l.segs
	l.segs = nil
	l.segMu.Unlock()
	return errors.Join(err, releaseAll(segs))
}
