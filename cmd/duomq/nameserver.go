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

	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
	"github.com/duomq/duomq/nameserver"
)

type nameserverProcess struct {
	Listen        string            `mapstructure:"listen"`
	MetricsListen string            `mapstructure:"metrics-listen"`
	Nameserver    nameserver.Config `mapstructure:"nameserver"`
	Log           logging.Config    `mapstructure:"log"`
}

func newNameserverCommand() *cobra.Command {
	var file, readyFile string
	cmd := &cobra.Command{
		Use:   "nameserver",
		Short: "Run a nameserver (broker registrations and topic routes for one DC)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := nameserverProcess{Listen: "127.0.0.1:9876", MetricsListen: "127.0.0.1:9877",
				Nameserver: nameserver.DefaultConfig(), Log: logging.DefaultConfig()}
			err := loadConfig(file, cmd.Flags(), map[string]string{
				"listen": "listen", "metrics-listen": "metrics-listen", "dc": "nameserver.dc",
			}, &pc)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runNameserver(ctx, pc, readyFile)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration file")
	f.StringVar(&readyFile, "ready-file", "", "write the bound addresses as JSON here once serving")
	f.String("listen", "", "gRPC listen address")
	f.String("metrics-listen", "", "HTTP /metrics listen address")
	f.String("dc", "", "data center served")
	return cmd
}

func runNameserver(ctx context.Context, pc nameserverProcess, readyFile string) error {
	logger, err := logging.New(pc.Log, os.Stderr)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ns, err := nameserver.New(pc.Nameserver, logger, reg)
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", pc.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", pc.Listen, err)
	}
	ml, err := net.Listen("tcp", pc.MetricsListen)
	if err != nil {
		gl.Close()
		return fmt.Errorf("metrics listen %s: %w", pc.MetricsListen, err)
	}
	gs := grpc.NewServer()
	nameserverpb.RegisterNameserverServer(gs, ns)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve.GRPC(gctx, gs, gl, 5*time.Second) })
	g.Go(func() error { return serve.Metrics(gctx, ml, reg) })
	g.Go(func() error { return ns.Run(gctx) })
	ready := map[string]string{"grpc": gl.Addr().String(), "metrics": "http://" + ml.Addr().String() + "/metrics"}
	if err := serve.WriteReady(readyFile, ready); err != nil {
		return err
	}
	logger.Info("nameserver serving", "grpc", ready["grpc"], "metrics", ready["metrics"], "dc", pc.Nameserver.DC)
	return g.Wait()
}
