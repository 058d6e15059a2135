package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/serve"
)

func newBrokerCommand() *cobra.Command {
	var file, readyFile string
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a broker (commitlog storage and the broker gRPC service)",
		Long: `Run one broker. Configuration comes from --config FILE (YAML, JSON or TOML),
then DUOMQ_* environment variables (DUOMQ_BROKER_DATA_DIR=... sets broker.data-dir),
then the flags below.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := daemon.DefaultBrokerProcess()
			err := loadConfig(file, cmd.Flags(), map[string]string{
				"listen": "listen", "metrics-listen": "metrics-listen", "data-dir": "broker.data-dir",
				"name": "broker.name", "dc": "broker.dc", "flush-mode": "broker.flush-mode",
				"nameservers": "nameservers", "advertise": "advertise", "etcd": "etcd-endpoints",
			}, &pc)
			if err != nil {
				return err
			}
			logger, err := logging.New(pc.Log, os.Stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return daemon.RunBroker(ctx, pc, daemon.BrokerMeta{}, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: readyWriter(readyFile, logger)})
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
	f.StringSlice("etcd", nil, "metadata service endpoints: topics, fencing and the liveness lease (none: standalone)")
	return cmd
}

// readyWriter writes the bound endpoints to path once a component serves.
func readyWriter(path string, logger interface{ Error(string, ...any) }) func(daemon.Endpoints) {
	return func(e daemon.Endpoints) {
		if err := serve.WriteReady(path, e); err != nil {
			logger.Error("cannot write ready file", "path", path, "err", err)
		}
	}
}
