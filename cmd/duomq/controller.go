package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
)

func newControllerCommand() *cobra.Command {
	var file, readyFile string
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run a DR controller candidate (election, failover, switchover, the traffic-switch API)",
		Long: `Run one controller candidate; run one in every site. The candidates elect a leader
through etcd; the leader fails over ordered topics of a DC that lost its brokers, runs
switchovers and failbacks, and serves the traffic-switch API (docs/controller.md).

Configuration comes from --config FILE (YAML, JSON or TOML: listen, token or token-file,
tls, etcd-endpoints, controller.*), then DUOMQ_* environment variables (DUOMQ_TOKEN sets
token, DUOMQ_CONTROLLER_DOWN_AFTER sets controller.down-after), then the flags below.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := daemon.DefaultControllerProcess()
			err := loadConfig(file, cmd.Flags(), map[string]string{
				"listen": "listen", "metrics-listen": "metrics-listen", "etcd": "etcd-endpoints",
				"id": "controller.id", "api-url": "controller.api-url", "token-file": "token-file",
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
			return daemon.RunController(ctx, pc, nil, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: readyWriter(readyFile, logger)})
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration file")
	f.StringVar(&readyFile, "ready-file", "", "write the bound addresses as JSON here once serving")
	f.String("listen", "", "API listen address (host:port, port 0 picks one)")
	f.String("metrics-listen", "", "HTTP /metrics listen address")
	f.StringSlice("etcd", nil, "etcd endpoints of the metadata service (comma-separated)")
	f.String("id", "", "candidate id (default: host name and pid)")
	f.String("api-url", "", "URL of this candidate's API as the other candidates reach it (default: from the bound address)")
	f.String("token-file", "", "file holding the API bearer token")
	return cmd
}
