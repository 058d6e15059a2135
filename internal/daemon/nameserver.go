package daemon

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
	"github.com/duomq/duomq/nameserver"
)

// NameserverProcess is the configuration of one nameserver service.
type NameserverProcess struct {
	Listen        string            `mapstructure:"listen" json:"listen"`
	MetricsListen string            `mapstructure:"metrics-listen" json:"metrics-listen"`
	Nameserver    nameserver.Config `mapstructure:"nameserver" json:"nameserver"`
	Log           logging.Config    `mapstructure:"log" json:"log"`
}

// DefaultNameserverProcess returns the defaults of `duomq nameserver`.
func DefaultNameserverProcess() NameserverProcess {
	return NameserverProcess{Listen: "127.0.0.1:9876", MetricsListen: "127.0.0.1:9877",
		Nameserver: nameserver.DefaultConfig(), Log: logging.DefaultConfig()}
}

// RunNameserver serves a nameserver until ctx ends.
func RunNameserver(ctx context.Context, pc NameserverProcess, d Deps) error {
	logger := d.componentLogger("nameserver", pc.Nameserver.DC)
	reg := d.registry()
	ns, err := nameserver.New(pc.Nameserver, logger, reg)
	if err != nil {
		return err
	}
	gl, ml, err := listen2(pc.Listen, pc.MetricsListen)
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	nameserverpb.RegisterNameserverServer(gs, ns)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve.GRPC(gctx, gs, gl, 5*time.Second) })
	g.Go(func() error { return serve.Metrics(gctx, ml, reg) })
	g.Go(func() error { return ns.Run(gctx) })
	ep := endpoints(gl, ml)
	d.ready(ep)
	logger.Info("nameserver serving", "grpc", ep.GRPC, "metrics", ep.Metrics, "dc", pc.Nameserver.DC)
	return g.Wait()
}
