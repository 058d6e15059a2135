package devcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/dr/meta/member"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
	"github.com/duomq/duomq/internal/wanroute"
)

// LoadSpec reads a site spec written by the supervisor.
func LoadSpec(path string) (SiteSpec, error) { return readJSON[SiteSpec](path) }

// readJSON decodes the JSON file at path (a spec or a ready file).
func readJSON[T any](path string) (T, error) {
	var v T
	b, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Components a site runs in processes of their own, besides its core
// process (etcd member, nameserver, brokers, proxy): a drill kills, stops
// and restarts them one at a time.
const (
	ComponentController = "controller"
	ComponentReplicator = "replicator"
)

// RunSite runs the core of one site until ctx ends: its etcd member, then
// (in a DC) its nameserver, brokers and proxy. Shutdown runs in the
// reverse order, closing etcd clients before the member so the member
// stops at once. The controller and replicator run in processes of their
// own (RunComponent).
func RunSite(ctx context.Context, spec SiteSpec, logger *slog.Logger) error {
	logger = logger.With("site", spec.Site)
	wanroute.Set(spec.WANRoutes)
	ec := spec.Etcd
	ec.Logger = logger
	m, err := member.Start(ctx, ec)
	if err != nil {
		return err
	}
	defer m.Close()
	logging.Component(logger, "meta", "").Info("etcd member ready", "client-url", m.ClientURL())
	cli, err := meta.NewClient(spec.EtcdEndpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	ready := newReadiness(spec, SiteReady{PID: os.Getpid(), Etcd: m.ClientURL()})
	store := meta.New(cli, meta.Options{Logger: logger})
	if spec.Nameserver == nil {
		return waitMember(ctx, m, logger)
	}
	cache, err := openCache(ctx, store, logger)
	if err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	defer cache.Close()
	return runDC(ctx, spec, store, cache, ready, logger)
}

// waitMember runs until ctx ends or the etcd member fails (the witness's
// core is its member alone).
func waitMember(ctx context.Context, m *member.Member, logger *slog.Logger) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-m.Err():
		logger.Error("etcd member failed", "err", err)
		return err
	}
}

// RunComponent runs one of a site's separate components (controller or
// replicator) until ctx ends, and writes ComponentReadyFile(spec, name)
// once it serves.
func RunComponent(ctx context.Context, spec SiteSpec, name string, logger *slog.Logger) error {
	logger = logger.With("site", spec.Site)
	wanroute.Set(spec.WANRoutes)
	readyFile := ComponentReadyFile(spec, name)
	os.Remove(readyFile)
	r := SiteReady{PID: os.Getpid()}
	report := func(slot **daemon.Endpoints) func(daemon.Endpoints) {
		return func(e daemon.Endpoints) {
			*slot = &e
			serve.WriteReady(readyFile, r)
		}
	}
	if i := slices.IndexFunc(spec.BrokerProcesses, func(bp daemon.BrokerProcess) bool { return bp.Broker.Name == name }); i >= 0 {
		return runBrokerComponent(ctx, spec, spec.BrokerProcesses[i], logger, func(e daemon.Endpoints) {
			r.Brokers, r.BrokerNames = []daemon.Endpoints{e}, []string{name}
			serve.WriteReady(readyFile, r)
		})
	}
	switch {
	case name == ComponentController && spec.Controller != nil:
		return daemon.RunController(ctx, *spec.Controller, nil, daemon.Deps{Logger: logger, Ready: report(&r.Controller)})
	case name == ComponentReplicator && spec.Replicator != nil:
		return withMetadata(ctx, spec, logger, func(store *meta.Store, cache *meta.Cache) error {
			return daemon.RunReplicator(ctx, *spec.Replicator, daemon.ProxyMeta{Store: store, Cache: cache}, daemon.Deps{Logger: logger, Ready: report(&r.Replicator)})
		})
	}
	return fmt.Errorf("site %s has no component %q (it runs %s)", spec.Site, name, strings.Join(spec.Components(), ", "))
}

// openCache loads the metadata cache, retrying for a minute while the
// metadata is unavailable: on a loaded machine the members of a fresh
// cluster may not answer a process started right after them in time.
func openCache(ctx context.Context, store *meta.Store, logger *slog.Logger) (*meta.Cache, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		cache, err := meta.NewCache(ctx, store)
		if err == nil || !errors.Is(err, meta.ErrUnavailable) || ctx.Err() != nil {
			return cache, err
		}
		logger.Warn("metadata not reachable yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Components lists the site's separate components.
func (s SiteSpec) Components() []string {
	var out []string
	if s.Controller != nil {
		out = append(out, ComponentController)
	}
	if s.Replicator != nil {
		out = append(out, ComponentReplicator)
	}
	for _, bp := range s.BrokerProcesses {
		out = append(out, bp.Broker.Name)
	}
	return out
}

// runBrokerComponent runs one broker in its own process, with its own
// link to the metadata.
func runBrokerComponent(ctx context.Context, spec SiteSpec, bp daemon.BrokerProcess, logger *slog.Logger, ready func(daemon.Endpoints)) error {
	return withMetadata(ctx, spec, logger, func(store *meta.Store, cache *meta.Cache) error {
		return daemon.RunBroker(ctx, bp, daemon.BrokerMeta{Cache: cache, Store: store}, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: ready})
	})
}

// withMetadata runs a separate component with a link of its own to the
// metadata: a store and a loaded cache, closed when run returns.
func withMetadata(ctx context.Context, spec SiteSpec, logger *slog.Logger, run func(*meta.Store, *meta.Cache) error) error {
	cli, err := meta.NewClient(spec.EtcdEndpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	store := meta.New(cli, meta.Options{Logger: logger})
	cache, err := openCache(ctx, store, logger)
	if err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	defer cache.Close()
	return run(store, cache)
}

// ComponentReadyFile is where a separate component reports its endpoints.
func ComponentReadyFile(spec SiteSpec, name string) string {
	return filepath.Join(spec.Dir, "ready-"+name+".json")
}

func runDC(ctx context.Context, spec SiteSpec, store *meta.Store, cache *meta.Cache, ready *readiness, logger *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
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
	for _, present := range []bool{spec.Nameserver != nil, spec.Proxy != nil} {
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

// brokerCount is how many brokers the site runs, in its core and in
// processes of their own.
func (s SiteSpec) brokerCount() int { return len(s.Brokers) + len(s.BrokerProcesses) }
