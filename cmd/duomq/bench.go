package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/broker/brokerbench"
	"github.com/duomq/duomq/proxy/proxybench"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure duomq beside a reference measured in the same run"}
	opts := brokerbench.DefaultOptions()
	br := &cobra.Command{
		Use:   "broker",
		Short: "Broker storage: async append, sync group commit, pull, latency (JSON)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp(opts.Dir, "duomq-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			o := opts
			o.Dir = dir
			res, err := brokerbench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	f := br.Flags()
	f.StringVar(&opts.Dir, "dir", "", "scratch directory on the disk to measure (default: the system temp dir)")
	f.IntVar(&opts.MessageSize, "size", opts.MessageSize, "message body size in bytes")
	f.DurationVar(&opts.Duration, "duration", 3*time.Second, "duration of each measurement")
	f.IntVar(&opts.Producers, "producers", opts.Producers, "concurrent producers of the sync run")
	cmd.AddCommand(br)
	for _, name := range []string{"produce", "consume", "e2e"} {
		cmd.AddCommand(newProxyBenchCommand(name))
	}
	return cmd
}

func newProxyBenchCommand(name string) *cobra.Command {
	o := proxybench.DefaultOptions()
	var clusterPath, dc string
	short := map[string]string{
		"produce": "Sends through a DC's proxy beside the same load straight to a broker (JSON)",
		"consume": "Receive+ack through a DC's proxy beside popping a broker directly (JSON)",
		"e2e":     "Send-to-delivery latency through the proxy and directly, at half the max rate (JSON)",
	}[name]
	cmd := &cobra.Command{
		Use:   name + " [--cluster FILE] [--dc DC]",
		Short: short,
		Long: short + `.
Needs a running cluster (duomq dev); a scratch topic and group are created and removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g := globalFlags{cluster: clusterPath}
			f, err := g.clusterFile()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			t, err := proxybench.Open(ctx, f, dc)
			if err != nil {
				return err
			}
			defer t.Close()
			run := map[string]func(context.Context, proxybench.Options) (proxybench.Result, error){
				"produce": t.Produce, "consume": t.Consume, "e2e": t.E2E,
			}[name]
			res, err := run(ctx, o)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&clusterPath, "cluster", "", "cluster file (default $DUOMQ_CLUSTER)")
	fl.StringVar(&dc, "dc", "idc-a", "DC whose proxy and first broker are measured")
	fl.IntVar(&o.MessageSize, "size", o.MessageSize, "message body size in bytes")
	fl.DurationVar(&o.Duration, "duration", o.Duration, "duration of each measurement")
	fl.IntVar(&o.Workers, "workers", o.Workers, "concurrent callers")
	fl.Float64Var(&o.LoadFraction, "load", o.LoadFraction, "latency is measured at this fraction of the proxy's max rate")
	return cmd
}
