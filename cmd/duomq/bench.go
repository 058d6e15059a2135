package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/broker/brokerbench"
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
	return cmd
}
