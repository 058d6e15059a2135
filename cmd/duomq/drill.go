package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/drills"
)

func newDrillCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "Run scripted, scored DR drills (docs/drills.md)"}
	cmd.AddCommand(newDrillRunCommand())
	return cmd
}

func newDrillRunCommand() *cobra.Command {
	var clusterPath, reportPath, dir string
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a drill scenario and print its report; exit non-zero when an assertion fails",
		Long: `Run a drill: on the local topology (started and stopped by the drill) unless
--cluster or the scenario names a cluster.json. Producers and consumers run
while the steps execute; the checker then scores the records (lost, duplicated,
reordered messages, RTO per fault). Faults are undone when the drill ends.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := drills.Load(args[0])
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := drills.Run(ctx, s, drills.Options{ClusterFile: clusterPath, Dir: dir, Out: cmd.ErrOrStderr(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				return err
			}
			rep.PrintSummary(cmd.OutOrStdout())
			if reportPath != "" {
				if err := rep.WriteJSON(reportPath); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "drill: report written to %s\n", reportPath)
			}
			if !rep.Pass {
				return fmt.Errorf("drill %s failed", s.Name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&clusterPath, "cluster", "", "run against this cluster.json instead of the scenario's topology")
	f.StringVar(&reportPath, "report", "", "write the JSON report here")
	f.StringVar(&dir, "dir", "", "directory of the local topology (default: a temporary one, removed afterwards)")
	return cmd
}
