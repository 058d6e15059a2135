package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/broker/server"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
	"github.com/duomq/duomq/nameserver"
)

// registration snapshots what a broker announces to nameservers.
func registration(b *broker.Broker, addr string) func() *nameserverpb.BrokerRegistration {
	return func() *nameserverpb.BrokerRegistration {
		r := &nameserverpb.BrokerRegistration{Name: b.Name(), Address: addr, Dc: b.DC(), Perm: uint32(b.Permission())}
		for _, t := range b.Topics() {
			r.Topics = append(r.Topics, &nameserverpb.TopicQueues{Name: t.Name, Queues: t.Queues, Perm: uint32(t.Perm)})
		}
		return r
	}
}

// brokerProcess is the configuration file of `duomq broker`.
type brokerProcess struct {
	Listen        string `mapstructure:"listen"`
	MetricsListen string `mapstructure:"metrics-listen"`
	// Advertise is the address registered with nameservers (default: the
	// bound listen address).
	Advertise string `mapstructure:"advertise"`
	// Nameservers are heartbeated every HeartbeatInterval (none: standalone).
	Nameservers       []string       `mapstructure:"nameservers"`
	HeartbeatInterval time.Duration  `mapstructure:"heartbeat-interval"`
	Broker            broker.Config  `mapstructure:"broker"`
	Log               logging.Config `mapstructure:"log"`
}

func defaultBrokerProcess() brokerProcess {
	return brokerProcess{
		Listen: "127.0.0.1:10911", MetricsListen: "127.0.0.1:10912", HeartbeatInterval: 3 * time.Second,
		Broker: broker.DefaultConfig(), Log: logging.DefaultConfig(),
	}
}

func newBrokerCommand() *cobra.Command {
	var file, readyFile string
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a broker (commitlog storage and the broker gRPC service)",
		Long: `Run one broker. Configuration comes from --config FILE (YAML, JSON or TOML),
then DUOMQ_* environment variables (DUOMQ_BROKER_DATA_DIR=... sets broker.data-dir),
then the flags below.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := defaultBrokerProcess()
			err := loadConfig(file, cmd.Flags(), map[string]string{
				"listen": "listen", "metrics-listen": "metrics-listen", "data-dir": "broker.data-dir",
				"name": "broker.name", "dc": "broker.dc", "flush-mode": "broker.flush-mode",
				"nameservers": "nameservers", "advertise": "advertise",
			}, &pc)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBroker(ctx, pc, readyFile)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration file")
	f.StringVar(&readyFile, "ready-file", "", "write the bound addresses as JSON here once serving")
	f.String("listen", "", "gRPC listen address (host:port, port 0 picks one)")
	f.String("metrics-listen", "", "HTTP /metrics listen address")
	f.String("data-dir", "", "data directory")
	f.String("name", "", "broker name")
	f.String("dc", "", "data center of this broker")
	f.String("flush-mode", "", "sync (group commit) or async")
	f.StringSlice("nameservers", nil, "nameserver addresses to register with (comma-separated)")
	f.String("advertise", "", "address registered with nameservers (default: the bound listen address)")
	return cmd
}

func runBroker(ctx context.Context, pc brokerProcess, readyFile string) error {
	logger, err := logging.New(pc.Log, os.Stderr)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b, err := broker.New(pc.Broker, logger, reg)
	if err != nil {
		return err
	}
	defer b.Close()
	gl, err := net.Listen("tcp", pc.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", pc.Listen, err)
	}
	ml, err := net.Listen("tcp", pc.MetricsListen)
	if err != nil {
		gl.Close()
		return fmt.Errorf("metrics listen %s: %w", pc.MetricsListen, err)
	}
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(int(pc.Broker.MaxMessageBytes)+2<<20),
		grpc.MaxSendMsgSize(broker.MaxPullBytes+2<<20),
	)
	brokerpb.RegisterBrokerServer(gs, server.New(b))
	b.Start(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve.GRPC(gctx, gs, gl, 10*time.Second) })
	g.Go(func() error { return serve.Metrics(gctx, ml, reg) })
	if len(pc.Nameservers) > 0 {
		advertise := pc.Advertise
		if advertise == "" {
			advertise = gl.Addr().String()
		}
		r, err := nameserver.NewRegistrar(pc.Nameservers, pc.HeartbeatInterval, registration(b, advertise), logger)
		if err != nil {
			return err
		}
		g.Go(func() error { return r.Run(gctx) })
	}
	ready := map[string]string{"grpc": gl.Addr().String(), "metrics": "http://" + ml.Addr().String() + "/metrics"}
	if err := serve.WriteReady(readyFile, ready); err != nil {
		return err
	}
	logger.Info("broker serving", "grpc", ready["grpc"], "metrics", ready["metrics"], "data-dir", pc.Broker.DataDir, "flush-mode", pc.Broker.FlushMode)
	err = g.Wait()
	logger.Info("broker stopping")
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}
