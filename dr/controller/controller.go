package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/logging"
)

// Controller is one controller candidate. Every candidate follows broker
// liveness and answers reads; the one elected leads: it runs transitions,
// resumes those a previous leader left, and fails over (and back)
// automatically when configured.
type Controller struct {
	cfg     Config
	store   *meta.Store
	cli     *clientv3.Client
	brokers BrokerOps
	log     *slog.Logger
	clock   Clock
	hooks   Hooks
	m       *metrics
	health  *health
	etcd    *etcdMonitor

	started   atomic.Bool
	readyCh   chan struct{}
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}

	mu    sync.Mutex
	cache *meta.Cache
	term  *term
}

// New returns a controller candidate; Run makes it take part.
func New(cfg Config, d Deps) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Brokers == nil {
		return nil, fmt.Errorf("controller: Deps.Store and Deps.Brokers are required: %w", ErrInvalidConfig)
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = realClock{}
	}
	log := logging.Component(d.Logger, "controller", cfg.Site).With("controller", cfg.ID)
	m := newMetrics(d.Registerer)
	return &Controller{
		cfg: cfg, store: d.Store, cli: d.Store.Client(), brokers: d.Brokers, log: log, clock: d.Clock, hooks: d.Hooks, m: m,
		health:  newHealth(d.Store, d.Clock, log, m, cfg),
		etcd:    &etcdMonitor{cli: d.Store.Client(), clock: d.Clock, interval: cfg.EtcdProbeInterval, m: newEtcdMetrics(d.Registerer)},
		readyCh: make(chan struct{}), closing: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// ID is the candidate's id.
func (c *Controller) ID() string { return c.cfg.ID }

// Ready is closed once the candidate has loaded the metadata and the
// brokers' liveness and takes part in the election.
func (c *Controller) Ready() <-chan struct{} { return c.readyCh }

// IsLeader reports whether this candidate leads now.
func (c *Controller) IsLeader() bool {
	_, err := c.leading()
	return err == nil
}

func (c *Controller) currentTerm() *term {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.term
}

// leading returns the current term, or ErrNotLeader.
func (c *Controller) leading() (*term, error) {
	t := c.currentTerm()
	if t == nil || t.ctx.Err() != nil {
		return nil, errorf(ErrNotLeader, "controller %s does not lead", c.cfg.ID)
	}
	return t, nil
}

// Run takes part in the election and leads when elected, until ctx ends
// or Close. It returns nil then; it may be called once.
func (c *Controller) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("controller: Run called twice")
	}
	defer close(c.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	cache, err := c.loadCache(ctx)
	if err != nil {
		return nil // ctx ended
	}
	defer cache.Close()
	c.mu.Lock()
	c.cache = cache
	c.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return c.health.run(gctx, func() []string {
			var out []string
			for _, d := range cache.DCs() {
				out = append(out, d.Name)
			}
			return out
		})
	})
	g.Go(func() error { c.watchDCStates(gctx, cache); return nil })
	g.Go(func() error { c.etcd.run(gctx); return nil })
	g.Go(func() error {
		select {
		case <-c.health.readyCh:
		case <-gctx.Done():
			return nil
		}
		close(c.readyCh)
		c.log.Info("controller candidate ready", "api-url", c.cfg.APIURL, "auto-failover", c.cfg.AutoFailover, "auto-failback", c.cfg.AutoFailback)
		return c.campaign(gctx)
	})
	return g.Wait()
}

// loadCache loads the routing metadata, retrying until etcd answers or
// ctx ends.
func (c *Controller) loadCache(ctx context.Context) (*meta.Cache, error) {
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cache, err := meta.NewCache(lctx, c.store)
		cancel()
		if err == nil {
			return cache, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.log.Warn("cannot load the metadata; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.clock.After(time.Second):
		}
	}
}

// watchDCStates keeps the DC state and traffic policy gauges current.
func (c *Controller) watchDCStates(ctx context.Context, cache *meta.Cache) {
	sub, unsub := cache.Subscribe()
	defer unsub()
	for {
		dcs := cache.DCs()
		for _, d := range dcs {
			c.m.dcState.WithLabelValues(d.Name).Set(dcStateValue(d.State))
		}
		traffic, _ := cache.Traffic()
		c.m.setTraffic(traffic, dcs)
		select {
		case <-ctx.Done():
			return
		case _, ok := <-sub:
			if !ok {
				return
			}
		}
	}
}

// Close stops the candidate, resigning leadership so that another
// candidate takes over at once, and waits for Run to return. Transitions
// in progress stop where they are and stay in controller/state for the
// next leader. Safe to call twice.
func (c *Controller) Close() {
	c.closeOnce.Do(func() { close(c.closing) })
	if c.started.Load() {
		<-c.done
	}
}

// freshAlive reads a DC's alive brokers from etcd (not the watched view),
// sorted by name.
func (c *Controller) freshAlive(ctx context.Context, dc string) ([]meta.Alive, error) {
	all, err := c.listAlive(ctx)
	if err != nil {
		return nil, err
	}
	return all[dc], nil
}

// placement is dc's placement of replicated queues (meta.Place): its
// registered brokers, live or not, from the watched metadata.
func (c *Controller) placement(dc string) []meta.Slot {
	c.mu.Lock()
	cache := c.cache
	c.mu.Unlock()
	if cache == nil {
		return nil
	}
	return cache.Placement(dc)
}

// freshPlacement reads dc's placement from etcd (not the watched view).
func (c *Controller) freshPlacement(ctx context.Context, dc string) ([]meta.Slot, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	all, _, err := c.store.ListPlacement(ctx)
	if err != nil {
		return nil, err
	}
	return all[dc], nil
}

func (c *Controller) listAlive(ctx context.Context) (map[string][]meta.Alive, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	all, _, err := c.store.ListAlive(ctx)
	return all, err
}
