package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
)

func newNameserverCommand() *cobra.Command {
	var file, readyFile string
	cmd := &cobra.Command{
		Use:   "nameserver",
		Short: "Run a nameserver (broker registrations and topic routes for one DC)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc := daemon.DefaultNameserverProcess()
			err := loadConfig(file, cmd.Flags(), map[string]string{
				"listen": "listen", "metrics-listen": "metrics-listen", "dc": "nameserver.dc",
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
			return daemon.RunNameserver(ctx, pc, daemon.Deps{Logger: logger, ProcessMetrics: true, Ready: readyWriter(readyFile, logger)})
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
