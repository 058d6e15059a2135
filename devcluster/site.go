package devcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/dr/meta/member"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/serve"
)

// LoadSpec reads a site spec written by the supervisor.
func LoadSpec(path string) (SiteSpec, error) {
	var s SiteSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("site spec %s: %w", path, err)
	}
	return s, nil
}

// RunSite runs one site until ctx ends: its etcd member, then (in a DC)
// its nameserver and brokers. Shutdown runs in the reverse order, closing
// etcd clients before the member so the member stops at once.
func RunSite(ctx context.Context, spec SiteSpec, logger *slog.Logger) error {
	logger = logger.With("site", spec.Site)
	ec := spec.Etcd
	ec.Logger = logger
	m, err := member.Start(ctx, ec)
	if err != nil {
		return err
	}
	defer m.Close()
	logger.Info("etcd member ready", "client-url", m.ClientURL())
	cli, err := meta.NewClient(spec.EtcdEndpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	ready := &readiness{spec: spec, want: len(spec.Brokers), r: SiteReady{PID: os.Getpid(), Etcd: m.ClientURL()},
		ns: spec.Nameserver == nil, proxy: spec.Proxy == nil, repl: spec.Replicator == nil, ctrl: spec.Controller == nil}
	store := meta.New(cli, meta.Options{Logger: logger})
	if spec.Nameserver == nil {
		return runWitness(ctx, spec, m, store, ready, logger)
	}
	cache, err := meta.NewCache(ctx, store)
	if err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	defer cache.Close()
	return runDC(ctx, spec, store, cache, ready, logger)
}

// runWitness runs the witness's controller candidate until ctx ends or
// the etcd member fails.
func runWitness(ctx context.Context, spec SiteSpec, m *member.Member, store *meta.Store, ready *readiness, logger *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	runController(g, gctx, spec, store, ready, logger)
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case err := <-m.Err():
			logger.Error("etcd member failed", "err", err)
			return err
		}
	})
	return g.Wait()
}

func runController(g *errgroup.Group, ctx context.Context, spec SiteSpec, store *meta.Store, ready *readiness, logger *slog.Logger) {
	if spec.Controller == nil {
		return
	}
	g.Go(func() error {
		return daemon.RunController(ctx, *spec.Controller, store, daemon.Deps{Logger: logger, Ready: ready.controllerReady})
	})
}

func runDC(ctx context.Context, spec SiteSpec, store *meta.Store, cache *meta.Cache, ready *readiness, logger *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	runController(g, gctx, spec, store, ready, logger)
	g.Go(func() error {
		return daemon.RunNameserver(gctx, *spec.Nameserver, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: ready.nameserver})
	})
	for i, bp := range spec.Brokers {
		g.Go(func() error {
			return daemon.RunBroker(gctx, bp, daemon.BrokerMeta{Cache: cache, Store: store}, daemon.Deps{Logger: logger, Ready: func(e daemon.Endpoints) { ready.broker(i, bp.Broker.Name, e) }})
		})
	}
	if spec.Proxy != nil {
		g.Go(func() error {
			return daemon.RunProxy(gctx, *spec.Proxy, daemon.ProxyMeta{Store: store, Cache: cache}, daemon.Deps{Logger: logger, Ready: ready.proxyReady})
		})
	}
	if spec.Replicator != nil {
		g.Go(func() error {
			return daemon.RunReplicator(gctx, *spec.Replicator, daemon.ProxyMeta{Store: store, Cache: cache}, daemon.Deps{Logger: logger, Ready: ready.replicatorReady})
		})
	}
	return g.Wait()
}

// readiness collects components' endpoints and writes the ready file
// once all have reported.
type readiness struct {
	spec  SiteSpec
	want  int
	mu    sync.Mutex
	r     SiteReady
	got   int
	ns    bool
	proxy bool // the proxy reported (or there is none)
	repl  bool // the replicator reported (or there is none)
	ctrl  bool // the controller candidate reported (or there is none)
}

func (rd *readiness) nameserver(e daemon.Endpoints) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.r.Nameserver = &e
	rd.ns = true
	rd.maybeWrite()
}

func (rd *readiness) broker(i int, name string, e daemon.Endpoints) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.r.Brokers == nil {
		rd.r.Brokers = make([]daemon.Endpoints, rd.want)
		rd.r.BrokerNames = make([]string, rd.want)
	}
	rd.r.Brokers[i], rd.r.BrokerNames[i] = e, name
	rd.got++
	rd.maybeWrite()
}

func (rd *readiness) proxyReady(e daemon.Endpoints) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.r.Proxy = &e
	rd.proxy = true
	rd.maybeWrite()
}

func (rd *readiness) replicatorReady(e daemon.Endpoints) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.r.Replicator = &e
	rd.repl = true
	rd.maybeWrite()
}

func (rd *readiness) controllerReady(e daemon.Endpoints) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.r.Controller = &e
	rd.ctrl = true
	rd.maybeWrite()
}

func (rd *readiness) maybeWrite() {
	if rd.ns && rd.proxy && rd.repl && rd.ctrl && rd.got == rd.want {
		serve.WriteReady(rd.spec.ReadyFile, rd.r)
	}
}
