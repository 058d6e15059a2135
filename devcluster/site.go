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
	ready := newReadiness(spec, SiteReady{PID: os.Getpid(), Etcd: m.ClientURL()})
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
		return daemon.RunController(ctx, *spec.Controller, store, daemon.Deps{Logger: logger, Ready: ready.one(&ready.r.Controller)})
	})
}

func runDC(ctx context.Context, spec SiteSpec, store *meta.Store, cache *meta.Cache, ready *readiness, logger *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	runController(g, gctx, spec, store, ready, logger)
	g.Go(func() error {
		return daemon.RunNameserver(gctx, *spec.Nameserver, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: ready.one(&ready.r.Nameserver)})
	})
	for i, bp := range spec.Brokers {
		g.Go(func() error {
			return daemon.RunBroker(gctx, bp, daemon.BrokerMeta{Cache: cache, Store: store}, daemon.Deps{Logger: logger, Ready: func(e daemon.Endpoints) { ready.broker(i, bp.Broker.Name, e) }})
		})
	}
	if spec.Proxy != nil {
		g.Go(func() error {
			return daemon.RunProxy(gctx, *spec.Proxy, daemon.ProxyMeta{Store: store, Cache: cache}, daemon.Deps{Logger: logger, Ready: ready.one(&ready.r.Proxy)})
		})
	}
	if spec.Replicator != nil {
		g.Go(func() error {
			return daemon.RunReplicator(gctx, *spec.Replicator, daemon.ProxyMeta{Store: store, Cache: cache}, daemon.Deps{Logger: logger, Ready: ready.one(&ready.r.Replicator)})
		})
	}
	return g.Wait()
}

// readiness collects components' endpoints and writes the ready file
// once every component of the site has reported.
type readiness struct {
	spec    SiteSpec
	mu      sync.Mutex
	r       SiteReady
	pending int // components that have not reported yet
}

func newReadiness(spec SiteSpec, r SiteReady) *readiness {
	rd := &readiness{spec: spec, r: r, pending: len(spec.Brokers)}
	for _, present := range []bool{spec.Nameserver != nil, spec.Proxy != nil, spec.Replicator != nil, spec.Controller != nil} {
		if present {
			rd.pending++
		}
	}
	if len(spec.Brokers) > 0 {
		rd.r.Brokers = make([]daemon.Endpoints, len(spec.Brokers))
		rd.r.BrokerNames = make([]string, len(spec.Brokers))
	}
	if rd.pending == 0 { // a site of an etcd member alone
		serve.WriteReady(spec.ReadyFile, rd.r)
	}
	return rd
}

// one is the Ready callback of the component whose endpoints go to slot.
func (rd *readiness) one(slot **daemon.Endpoints) func(daemon.Endpoints) {
	return func(e daemon.Endpoints) {
		rd.report(func() { *slot = &e })
	}
}

func (rd *readiness) broker(i int, name string, e daemon.Endpoints) {
	rd.report(func() { rd.r.Brokers[i], rd.r.BrokerNames[i] = e, name })
}

// report records one component under mu and writes the ready file after
// the last.
func (rd *readiness) report(set func()) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	set()
	if rd.pending--; rd.pending == 0 {
		serve.WriteReady(rd.spec.ReadyFile, rd.r)
	}
}
