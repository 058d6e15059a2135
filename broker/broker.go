package broker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/consumequeue"
	"github.com/duomq/duomq/broker/index"
	"github.com/duomq/duomq/broker/offsets"
)

// queueKey names one queue of one topic.
type queueKey struct {
	topic string
	id    uint32
}

func (k queueKey) String() string { return fmt.Sprintf("%s/%d", k.topic, k.id) }

// queue is the broker's view of one (topic, queue).
type queue struct {
	cq *consumequeue.Queue
	// next is the offset the next appended message gets; guarded by
	// Broker.appendMu. It runs ahead of cq.MaxOffset() by the messages
	// appended but not yet dispatched.
	next int64
}

// Broker is one broker's storage engine: the commitlog, the consume queues
// and index built from it by the dispatcher, consumer offsets and topics,
// pop state, and the scheduler of delayed messages.
//
// Lock order: popMu, a popQueue's mu, appendMu, mu. The dispatcher takes
// mu (read) only. The in-sync sets' evalMu is never taken under appendMu
// or mu, and their mu is taken last (replica_isr.go). setState.mu (the
// standbys waited for, replica_set.go) is taken with nothing else held
// but appendMu, mu or evalMu, and no lock is taken under it.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	setState setState // replica set role, for metrics

	clog *commitlog.Log
	idx  *index.Index
	offs *offsets.Store

	// appendMu serialises appends so that queue offsets are assigned in
	// commitlog order; it also guards ids.
	appendMu sync.Mutex
	ids      *idCache // recent idempotent ids (idempotent.go)

	mu     sync.RWMutex // guards st and queues
	st     state
	queues map[queueKey]*queue

	dispatched atomic.Int64 // commitlog position the dispatcher has reached
	notifyMu   sync.Mutex
	notify     chan struct{} // closed when the dispatcher advances

	popMu sync.Mutex // guards pops (the map; each popQueue has its own lock)
	pops  map[popKey]*popQueue
	// recentPops are the receipts of recent named pops (ReleasePop).
	recentPops *recentPops
	popGen     atomic.Uint64 // receipt generations (pop.go)

	schedWake []chan struct{} // per delay level: a record was dispatched

	closeOnce sync.Once
	closed    chan struct{}
	stopCtx   context.Context // cancelled by Close; bounds internal waits
	stop      context.CancelFunc
	wg        sync.WaitGroup
	rr        atomic.Uint32 // round robin for queue_id = -1

	repl       *replProgress // followers' acknowledgements (replica_fetch.go)
	isr        *syncSets     // in-sync sets of sync topics (replica_isr.go)
	leaseTTL   atomic.Int64  // 0: no lease checks (replica.go)
	leaseUntil atomic.Int64  // unix nanos
}

// New opens (or creates) a broker's storage in cfg.DataDir and recovers it:
// the commitlog's torn tail is truncated, consume queues are cut back to the
// recovery checkpoint and rebuilt from the commitlog past it. reg may be nil
// (no metrics exported). Call Start to run the background loops.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		cfg:        cfg,
		log:        logger.With("component", "broker", "broker", cfg.Name, "dc", cfg.DC),
		queues:     map[queueKey]*queue{},
		ids:        newIDCache(cfg.IdempotencyCacheSize, cfg.IdempotencyWindow),
		pops:       map[popKey]*popQueue{},
		recentPops: newRecentPops(),
		schedWake:  make([]chan struct{}, len(DelayLevels)),
		notify:     make(chan struct{}),
		closed:     make(chan struct{}),
		repl:       newReplProgress(),
		isr:        newSyncSets(),
	}
	b.stopCtx, b.stop = context.WithCancel(context.Background())
	b.popGen.Store(uint64(time.Now().UnixNano()))
	for i := range b.schedWake {
		b.schedWake[i] = make(chan struct{}, 1)
	}
	b.metrics = newMetrics(reg, b)
	if err := b.open(); err != nil {
		b.closeStores()
		return nil, err
	}
	return b, nil
}

func (b *Broker) open() error {
	if err := os.MkdirAll(b.cfg.DataDir, 0o755); err != nil {
		return err
	}
	var perm Perm
	if b.cfg.Readable {
		perm |= PermRead
	}
	if b.cfg.Writable {
		perm |= PermWrite
	}
	st, err := loadState(b.cfg.DataDir, perm)
	if err != nil {
		return err
	}
	b.st = st
	cp, err := loadCheckpoint(b.cfg.DataDir)
	if err != nil {
		return err
	}
	if err := b.openStores(cp); err != nil {
		return err
	}
	return b.recover(cp)
}

func (b *Broker) openStores(cp checkpoint) error {
	var err error
	b.clog, err = commitlog.Open(b.commitlogOptions(cp.DispatchedPos))
	if err != nil {
		return fmt.Errorf("open commitlog: %w", err)
	}
	b.idx, err = index.Open(filepath.Join(b.cfg.DataDir, "index"), index.Options{
		SlotCount: b.cfg.IndexSlots, EntriesPerFile: b.cfg.IndexEntriesPerFile,
	})
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	b.offs, err = offsets.Open(filepath.Join(b.cfg.DataDir, "offsets.json"))
	if err != nil {
		return fmt.Errorf("open consumer offsets: %w", err)
	}
	for _, t := range b.st.Topics {
		if err := b.openQueues(t); err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) commitlogOptions(recoverFrom int64) commitlog.Options {
	o := commitlog.DefaultOptions()
	o.Dir = filepath.Join(b.cfg.DataDir, "commitlog")
	o.SegmentSize = b.cfg.SegmentBytes
	o.FlushInterval = b.cfg.FlushInterval
	o.MaxRecordSize = int(b.cfg.MaxMessageBytes) + maxHeaderBytes
	o.RecoverFrom = recoverFrom
	o.Logger = b.log
	o.Hooks.OnFsync = b.metrics.observeFsync
	o.Hooks.OnCorruption = func(pos int64, err error) {
		b.metrics.corruptRecords.Inc()
		b.log.Error("corrupt record in commitlog", "pos", pos, "err", err)
	}
	if b.cfg.FlushMode == FlushSync {
		o.FlushMode = commitlog.FlushSync
	} else {
		o.FlushMode = commitlog.FlushAsync
	}
	return o
}

// openQueues opens the consume queues of t that are not open yet.
func (b *Broker) openQueues(t TopicConfig) error {
	for id := uint32(0); id < t.Queues; id++ {
		k := queueKey{t.Name, id}
		if _, ok := b.queues[k]; ok {
			continue
		}
		cq, err := consumequeue.Open(b.queueDir(k), consumequeue.Options{EntriesPerFile: b.cfg.QueueEntriesPerFile})
		if err != nil {
			return fmt.Errorf("open consume queue %s/%d: %w", t.Name, id, err)
		}
		b.queues[k] = &queue{cq: cq, next: cq.MaxOffset()}
	}
	return nil
}

func (b *Broker) queueDir(k queueKey) string {
	return filepath.Join(b.cfg.DataDir, "consumequeue", k.topic, fmt.Sprint(k.id))
}

// recover cuts every consume queue back to the recovery start and
// re-dispatches the commitlog from there, so queues and index hold exactly
// the records of the (already tail-checked) commitlog.
func (b *Broker) recover(cp checkpoint) error {
	start := max(cp.DispatchedPos, b.clog.MinPos())
	start = min(start, b.clog.WrittenPos())
	for k, q := range b.queues {
		if err := q.cq.TruncateFromPos(start); err != nil {
			return fmt.Errorf("recover consume queue %s/%d: %w", k.topic, k.id, err)
		}
		if err := q.cq.SetMinLogPos(b.clog.MinPos()); err != nil {
			return err
		}
	}
	if err := b.clog.Sync(); err != nil {
		return err
	}
	b.dispatched.Store(start)
	t0 := time.Now()
	for b.dispatched.Load() < b.clog.WrittenPos() {
		if _, err := b.dispatchOnce(b.clog.WrittenPos()); err != nil {
			return fmt.Errorf("recovery dispatch: %w", err)
		}
	}
	for _, q := range b.queues {
		q.next = q.cq.MaxOffset()
	}
	b.log.Info("broker recovered", "from", start, "to", b.dispatched.Load(), "took", time.Since(t0))
	return b.writeCheckpoint()
}

// Start runs the dispatcher, checkpoint, retention, pop-revival and
// scheduler loops until Close.
func (b *Broker) Start(ctx context.Context) {
	b.loop(b.dispatchLoop)
	b.loop(func() { b.every(b.cfg.CheckpointInterval, "checkpoint", b.writeCheckpoint) })
	b.loop(func() { b.every(b.cfg.RetentionCheckInterval, "retention", b.applyRetention) })
	b.loop(b.reviveLoop)
	b.loop(b.syncSetLoop)
	for level := range DelayLevels {
		b.loop(func() { b.runLevel(level) })
	}
	go func() {
		select {
		case <-ctx.Done():
			b.Close()
		case <-b.closed:
		}
	}()
}

func (b *Broker) loop(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}

func (b *Broker) every(d time.Duration, what string, fn func() error) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-b.closed:
			return
		case <-t.C:
			if err := fn(); err != nil {
				b.log.Error("background task failed", "task", what, "err", err)
			}
		}
	}
}

// Close stops the loops, writes a final checkpoint and closes every file.
// It is safe to call more than once.
func (b *Broker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		close(b.closed)
		b.stop()
		b.wg.Wait()
		b.appendMu.Lock()
		defer b.appendMu.Unlock()
		if b.clog.Sync() == nil {
			b.catchUp()
			err = b.writeCheckpoint()
		}
		b.closeStores()
	})
	return err
}

// catchUp dispatches whatever was appended but not yet dispatched.
func (b *Broker) catchUp() {
	for b.dispatched.Load() < b.clog.WrittenPos() {
		if n, err := b.dispatchOnce(b.clog.WrittenPos()); err != nil || n == 0 {
			return
		}
	}
}

func (b *Broker) closeStores() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, q := range b.queues {
		q.cq.Close()
	}
	if b.idx != nil {
		b.idx.Close()
	}
	if b.offs != nil {
		b.offs.Close()
	}
	if b.clog != nil {
		b.clog.Close()
	}
}

// Name is the broker's name; DC its data center.
func (b *Broker) Name() string { return b.cfg.Name }

// DC is the data center of the broker.
func (b *Broker) DC() string { return b.cfg.DC }

// Config returns the broker's configuration.
func (b *Broker) Config() Config { return b.cfg }

func (b *Broker) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}
