package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "duomq",
		Short:         "duomq: an active-active, multi-datacenter message queue with DR drills",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newBrokerCommand(), newNameserverCommand(), newBenchCommand())
	return root
}
