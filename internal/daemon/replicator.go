package daemon

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/duomq/duomq/internal/brokerconn"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
	"github.com/duomq/duomq/replicator"
)

// ReplicatorProcess is the configuration of one replicator service (the
// file of `duomq replicator --config`).
type ReplicatorProcess struct {
	MetricsListen string `mapstructure:"metrics-listen" json:"metrics-listen"`
	// Etcd are the metadata service's endpoints (unless the process shares
	// a site's client).
	Etcd       []string          `mapstructure:"etcd-endpoints" json:"etcd-endpoints"`
	Replicator replicator.Config `mapstructure:"replicator" json:"replicator"`
	Log        logging.Config    `mapstructure:"log" json:"log"`
}

// DefaultReplicatorProcess returns the defaults of `duomq replicator`.
func DefaultReplicatorProcess() ReplicatorProcess {
	return ReplicatorProcess{MetricsListen: "127.0.0.1:10931", Replicator: replicator.DefaultConfig(), Log: logging.DefaultConfig()}
}

// RunReplicator runs a replicator until ctx ends.
func RunReplicator(ctx context.Context, pc ReplicatorProcess, pm ProxyMeta, d Deps) error {
	logger := d.componentLogger("replicator", pc.Replicator.DC)
	reg := d.registry()
	if err := pc.Replicator.Validate(); err != nil {
		return err
	}
	pm, closeMeta, err := openMeta(ctx, pm, pc.Etcd, "replicator", logger)
	if err != nil {
		return err
	}
	defer closeMeta()
	pool := brokerconn.New()
	defer pool.Close()
	r, err := replicator.New(pc.Replicator, pm.Cache, pool, reg, logger)
	if err != nil {
		return err
	}
	ml, err := listen1(pc.MetricsListen)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve.Metrics(gctx, ml, reg) })
	g.Go(func() error { return r.Run(gctx) })
	ep := Endpoints{Metrics: "http://" + ml.Addr().String() + "/metrics"}
	d.ready(ep)
	logger.Info("replicator running", "dc", pc.Replicator.DC, "metrics", ep.Metrics)
	return g.Wait()
}

// listen1 binds one listener.
func listen1(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}
