package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/devcluster"
	"github.com/duomq/duomq/internal/logging"
)

func newDevCommand() *cobra.Command {
	var o devcluster.SupervisorOptions
	logCfg := devLogConfig()
	cmd := &cobra.Command{
		Use:   "dev [--dir DIR]",
		Short: "Run the whole local topology: idc-a, idc-b and a witness, each site its own process",
		Long: `Run the local topology on loopback: three sites (idc-a, idc-b, witness), each its own
OS process, with an etcd member in every site and, in each DC, a nameserver and brokers.
When every site answers, DIR/cluster.json is written and the line to export is printed.
Killing a site's pid (see cluster.json) takes that whole site down; it is reported and
not restarted. Ctrl-C or SIGTERM stops every site cleanly. Data stays in DIR, so running
again with the same DIR finds the same cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			logger, err := logging.New(logCfg, os.Stderr)
			if err != nil {
				return err
			}
			if err := exportLogConfig(logCfg); err != nil { // to every site process
				return err
			}
			o.Binary, o.Out, o.Logger = exe, cmd.OutOrStdout(), logger
			s, err := devcluster.NewSupervisor(o)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.OutOrStdout(), "duomq dev: starting idc-a, idc-b and witness in %s\n", o.Dir)
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "data/dev", "directory of the topology (created; reused when it exists)")
	f.StringVar(&logCfg.Format, "log-format", logCfg.Format, "text or json, for the supervisor and every site's log (DIR/<site>/site.log)")
	f.StringVar(&logCfg.Level, "log-level", logCfg.Level, "debug, info, warn or error, likewise")
	f.IntVar(&o.BrokersPerDC, "brokers-per-dc", 2, "brokers in each DC (first run of a directory only)")
	f.StringVar(&o.FlushMode, "flush-mode", "sync", "brokers' flush mode, sync or async (first run of a directory only)")
	f.BoolVar(&o.WAN, "wan", false, "relay traffic between sites' brokers through the supervisor, so latency can be added (POST DEV_API/wan?a=SITE&b=SITE&delay=2ms); not with --netns")
	f.BoolVar(&o.Standbys, "standbys", false, "make each of a DC's brokers a replica set of two (a leader and its standby, promoted when the leader is lost), every broker in its own process (first run of a directory only)")
	f.BoolVar(&o.Netns, "netns", false, "run each site in its own network namespace, so links between sites can be cut (root; first run of a directory only)")
	return cmd
}

func newSiteCommand() *cobra.Command {
	var specFile, component string
	logCfg := devLogConfig()
	cmd := &cobra.Command{
		Use:    "site --spec FILE [--component controller|replicator|BROKER]",
		Short:  "Run one site of the local topology, or one of its components (started by duomq dev)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := devcluster.LoadSpec(specFile)
			if err != nil {
				return err
			}
			logger, err := logging.New(logCfg, os.Stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if component != "" {
				return devcluster.RunComponent(ctx, spec, component, logger)
			}
			return devcluster.RunSite(ctx, spec, logger)
		},
	}
	cmd.Flags().StringVar(&specFile, "spec", "", "site spec written by duomq dev")
	cmd.Flags().StringVar(&component, "component", "", "run only this separate component of the site (controller or replicator)")
	cmd.Flags().StringVar(&logCfg.Format, "log-format", logCfg.Format, "text or json")
	cmd.MarkFlagRequired("spec")
	return cmd
}
