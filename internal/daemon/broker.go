package daemon

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/broker/metasync"
	"github.com/duomq/duomq/broker/server"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
	"github.com/duomq/duomq/nameserver"
)

// BrokerProcess is the configuration of one broker service (the file of
// `duomq broker --config`).
type BrokerProcess struct {
	Listen        string `mapstructure:"listen" json:"listen"`
	MetricsListen string `mapstructure:"metrics-listen" json:"metrics-listen"`
	// Advertise is the address registered with nameservers (default: the
	// bound listen address).
	Advertise string `mapstructure:"advertise" json:"advertise"`
	// Nameservers are heartbeated every HeartbeatInterval (none: standalone).
	Nameservers       []string      `mapstructure:"nameservers" json:"nameservers"`
	HeartbeatInterval time.Duration `mapstructure:"heartbeat-interval" json:"heartbeat-interval"`
	// LeaseTTL is the liveness lease of a broker connected to the metadata
	// service: it takes ordered writes only while renewed within it, and a
	// controller promotes another DC only once it expired.
	LeaseTTL time.Duration `mapstructure:"lease-ttl" json:"lease-ttl"`
	// Etcd are the metadata service's endpoints: the broker's topics and
	// fencing records follow it and its liveness lease lives there (none:
	// standalone, unless the process shares a site's client).
	Etcd   []string       `mapstructure:"etcd-endpoints" json:"etcd-endpoints"`
	Broker broker.Config  `mapstructure:"broker" json:"broker"`
	Log    logging.Config `mapstructure:"log" json:"log"`
}

// DefaultBrokerProcess returns the defaults of `duomq broker`.
func DefaultBrokerProcess() BrokerProcess {
	return BrokerProcess{
		Listen: "127.0.0.1:10911", MetricsListen: "127.0.0.1:10912", HeartbeatInterval: 3 * time.Second, LeaseTTL: 2 * time.Second,
		Broker: broker.DefaultConfig(), Log: logging.DefaultConfig(),
	}
}

// BrokerMeta is a broker's link to the global metadata; both nil for a
// standalone broker.
type BrokerMeta struct {
	// Cache is what the broker's topics and fencing records follow.
	Cache metasync.Source
	// Store holds the broker's liveness lease (ordered writes need it).
	Store *meta.Store
}

// RunBroker serves a broker until ctx ends, reconciled to the metadata
// when bm has it.
func RunBroker(ctx context.Context, pc BrokerProcess, bm BrokerMeta, d Deps) error {
	logger := d.componentLogger("broker", pc.Broker.DC)
	reg := d.registry()
	if bm.Store == nil && len(pc.Etcd) > 0 {
		pm, closeMeta, err := openMeta(ctx, ProxyMeta{}, pc.Etcd, "broker", logger)
		if err != nil {
			return err
		}
		defer closeMeta()
		bm = BrokerMeta{Cache: pm.Cache, Store: pm.Store}
	}
	b, err := broker.New(pc.Broker, logger, reg)
	if err != nil {
		return err
	}
	defer b.Close()
	gl, ml, err := listen2(pc.Listen, pc.MetricsListen)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(int(pc.Broker.MaxMessageBytes)+2<<20),
		grpc.MaxSendMsgSize(broker.MaxPullBytes+2<<20),
		grpc.UnaryInterceptor(logging.UnaryServerInterceptor(logger.With("broker", pc.Broker.Name), server.TraceIDOf)),
	)
	brokerpb.RegisterBrokerServer(gs, server.New(b))
	b.Start(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve.GRPC(gctx, gs, gl, 10*time.Second) })
	g.Go(func() error { return serve.Metrics(gctx, ml, reg) })
	addr := pc.Advertise
	if addr == "" {
		addr = gl.Addr().String()
	}
	if bm.Store != nil {
		l := metasync.NewLease(bm.Store, b, addr, pc.LeaseTTL, logger)
		g.Go(func() error { return l.Run(gctx) })
	}
	if bm.Cache != nil {
		r := metasync.New(b, bm.Cache, logger, 30*time.Second)
		if err := r.Once(); err != nil {
			logger.Warn("initial topic reconciliation incomplete", "err", err)
		}
		g.Go(func() error { return r.Run(gctx) })
		if ss, ok := bm.Cache.(metasync.SetSource); ok && bm.Store != nil {
			k := metasync.NewSetKeeper(bm.Store, ss, b, logger)
			g.Go(func() error { return k.Run(gctx) })
		}
	}
	if len(pc.Nameservers) > 0 {
		r, err := nameserver.NewRegistrar(pc.Nameservers, pc.HeartbeatInterval, Registration(b, addr), logger)
		if err != nil {
			return err
		}
		g.Go(func() error { return r.Run(gctx) })
	}
	ep := endpoints(gl, ml)
	d.ready(ep)
	logger.Info("broker serving", "broker", pc.Broker.Name, "grpc", ep.GRPC, "metrics", ep.Metrics, "data-dir", pc.Broker.DataDir, "flush-mode", pc.Broker.FlushMode)
	err = g.Wait()
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}

// Registration snapshots what a broker announces to nameservers.
func Registration(b *broker.Broker, addr string) func() *nameserverpb.BrokerRegistration {
	return func() *nameserverpb.BrokerRegistration {
		r := &nameserverpb.BrokerRegistration{Name: b.Name(), Address: addr, Dc: b.DC(), Perm: uint32(b.Permission())}
		for _, t := range b.Topics() {
			r.Topics = append(r.Topics, &nameserverpb.TopicQueues{Name: t.Name, Queues: t.Queues, Perm: uint32(t.Perm)})
		}
		return r
	}
}
