package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
)

func newReplicatorCommand() *cobra.Command {
	var file, readyFile string
	cmd := &cobra.Command{
		Use:   "replicator",
		Short: "Run a DC's replicator (follows the queues another DC leads, at the same offsets)",
		Long: `Run the replicator of one DC. Configuration comes from --config FILE,
then DUOMQ_* environment variables (DUOMQ_REPLICATOR_DC=idc-b sets replicator.dc),
then the flags below.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := daemon.DefaultReplicatorProcess()
			err := loadConfig(file, cmd.Flags(), map[string]string{
				"metrics-listen": "metrics-listen", "dc": "replicator.dc", "etcd": "etcd-endpoints",
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
			return daemon.RunReplicator(ctx, pc, daemon.ProxyMeta{}, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: readyWriter(readyFile, logger)})
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration file")
	f.StringVar(&readyFile, "ready-file", "", "write the bound addresses as JSON here once running")
	f.String("metrics-listen", "", "HTTP /metrics listen address")
	f.String("dc", "", "the DC this replicator copies into")
	f.StringSlice("etcd", nil, "metadata service endpoints (comma-separated)")
	return cmd
}
