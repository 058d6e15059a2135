package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/drills"
)

func newDrillCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "Run scripted, scored DR drills (docs/drills.md)"}
	list, show := newDrillListCommand(g), newDrillShowCommand(g)
	g.register(list)
	g.register(show)
	cmd.AddCommand(newDrillRunCommand(), list, show)
	return cmd
}

func newDrillListCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the drills run against the cluster, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				reps, err := drills.History(ctx, s)
				if err != nil {
					return err
				}
				rows := make([][]string, 0, len(reps))
				for _, r := range reps {
					result := "PASS"
					if !r.Pass {
						result = "FAIL"
					}
					rows = append(rows, []string{r.ID(), r.Scenario, r.Started.Format(time.RFC3339), r.Ended.Sub(r.Started).Round(time.Second).String(), result})
				}
				return g.print(cmd.OutOrStdout(), reps, []string{"ID", "SCENARIO", "STARTED", "TOOK", "RESULT"}, rows)
			})
		},
	}
}

func newDrillShowCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a stored drill report (table, or -o json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				r, err := drills.Get(ctx, s, args[0])
				if err != nil {
					return err
				}
				if g.output == "json" {
					return g.print(cmd.OutOrStdout(), r, nil, nil)
				}
				r.PrintSummary(cmd.OutOrStdout())
				return nil
			})
		},
	}
}

func newDrillRunCommand() *cobra.Command {
	var clusterPath, reportPath, htmlPath, dir, records string
	cmd := &cobra.Command{
		Use:   "run FILE [--cluster cluster.json] [--report out.json] [--html out.html]",
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
			rep, err := drills.Run(ctx, s, drills.Options{ClusterFile: clusterPath, Dir: dir, RecordsDir: records, Out: cmd.ErrOrStderr(), Logger: slog.New(slog.DiscardHandler)})
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
			if htmlPath != "" {
				if err := rep.WriteHTML(htmlPath); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "drill: HTML report written to %s\n", htmlPath)
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
	f.StringVar(&htmlPath, "html", "", "write a self-contained HTML report (charts per DC, faults shaded) here")
	f.StringVar(&dir, "dir", "", "directory of the local topology (default: a temporary one, removed afterwards)")
	f.StringVar(&records, "records", "", "write the workload's raw records here (sends.jsonl, deliveries.jsonl)")
	return cmd
}
