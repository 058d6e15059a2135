package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
	"github.com/duomq/duomq/nameserver"
	"github.com/duomq/duomq/proxy"
)

// ProxyProcess is the configuration of one proxy service (the file of
// `duomq proxy --config`).
type ProxyProcess struct {
	Proxy proxy.Config   `mapstructure:"proxy" json:"proxy"`
	Log   logging.Config `mapstructure:"log" json:"log"`
}

// DefaultProxyProcess returns the defaults of `duomq proxy`.
func DefaultProxyProcess() ProxyProcess {
	return ProxyProcess{Proxy: proxy.DefaultConfig(), Log: logging.DefaultConfig()}
}

// ProxyMeta is metadata access a process already has (a site shares one
// between its components). The zero value makes RunProxy connect to the
// configured etcd endpoints and keep its own cache.
type ProxyMeta struct {
	Store *meta.Store
	Cache *meta.Cache
}

// RunProxy serves a proxy until ctx ends.
func RunProxy(ctx context.Context, pc ProxyProcess, pm ProxyMeta, d Deps) error {
	logger := d.componentLogger("proxy", pc.Proxy.DC)
	reg := d.registry()
	cfg := pc.Proxy
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.ID == "" {
		cfg.ID = proxy.DefaultID(cfg.DC)
	}
	if pm.Store == nil && len(cfg.Etcd) == 0 {
		return fmt.Errorf("proxy config: etcd-endpoints is empty: the proxy needs the metadata service: %w", proxy.ErrInvalidConfig)
	}
	pm, closeMeta, err := openMeta(ctx, pm, cfg.Etcd, "proxy", logger)
	if err != nil {
		return err
	}
	defer closeMeta()
	routes := map[string]proxy.Routes{}
	for dc, addrs := range cfg.Nameservers {
		rc, err := nameserver.NewRouteClient(addrs, cfg.RouteRefresh)
		if err != nil {
			return err
		}
		defer rc.Close()
		routes[dc] = rc
	}
	presence := proxy.NewEtcdPresence(pm.Store.Client(), pm.Store.Key(meta.KeyConsumers), pm.Store.Key(meta.KeyProxies), cfg.DC, cfg.ID, cfg.ConsumerTTL, logger)
	p, err := proxy.New(cfg, proxy.Deps{Meta: pm.Cache, Ordered: pm.Store, Routes: routes, Presence: presence, Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	defer p.Close()
	opts, err := p.ServerOptions()
	if err != nil {
		return err
	}
	gl, ml, err := listen2(cfg.Listen, cfg.MetricsListen)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(opts...)
	p.Register(gs)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve.GRPC(gctx, gs, gl, 5*time.Second) })
	g.Go(func() error { return serve.Metrics(gctx, ml, reg) })
	g.Go(func() error { return p.Run(gctx) })
	g.Go(func() error { return presence.Run(gctx) })
	ep := endpoints(gl, ml)
	d.ready(ep)
	logger.Info("proxy serving", "dc", cfg.DC, "id", cfg.ID, "grpc", ep.GRPC, "metrics", ep.Metrics, "tls", cfg.TLS.Enabled(), "auth", cfg.Auth.Enabled)
	return g.Wait()
}

// openStore returns store, or a store over a new client of etcd (the
// returned func closes that client).
func openStore(store *meta.Store, etcd []string, component string, logger *slog.Logger) (*meta.Store, func(), error) {
	if store != nil {
		return store, func() {}, nil
	}
	if len(etcd) == 0 {
		return nil, func() {}, fmt.Errorf("%s config: etcd-endpoints is empty: the %s needs the metadata service", component, component)
	}
	cli, err := meta.NewClient(etcd)
	if err != nil {
		return nil, func() {}, fmt.Errorf("metadata service %v: %w", etcd, err)
	}
	return meta.New(cli, meta.Options{Logger: logger}), func() { cli.Close() }, nil
}

// openMeta completes pm: a store (openStore) and a loaded cache. The
// returned func closes what it opened.
func openMeta(ctx context.Context, pm ProxyMeta, etcd []string, component string, logger *slog.Logger) (ProxyMeta, func(), error) {
	store, closeStore, err := openStore(pm.Store, etcd, component, logger)
	if err != nil {
		return pm, closeStore, err
	}
	pm.Store = store
	if pm.Cache != nil {
		return pm, closeStore, nil
	}
	cache, err := meta.NewCache(ctx, pm.Store)
	if err != nil {
		closeStore()
		return pm, func() {}, fmt.Errorf("metadata cache: %w", err)
	}
	pm.Cache = cache
	return pm, func() { cache.Close(); closeStore() }, nil
}
