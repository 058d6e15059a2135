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
	g := &globalFlags{}
	admin := []*cobra.Command{newTopicCommand(g), newGroupCommand(g), newDCCommand(g),
		newTrafficCommand(g), newSwitchoverCommand(g), newFailoverCommand(g), newFailbackCommand(g), newStatusCommand(g)}
	for _, c := range admin {
		g.register(c)
	}
	apps := []*cobra.Command{newProduceCommand(g), newConsumeCommand(g), newClientsCommand(g), newDLQCommand(g), newTraceCommand(g)}
	for _, c := range apps {
		g.register(c)
	}
	root.AddCommand(admin...)
	root.AddCommand(apps...)
	root.AddCommand(newDevCommand(), newSiteCommand(), newMetaCommand(), newBrokerCommand(), newNameserverCommand(), newProxyCommand(), newReplicatorCommand(), newControllerCommand(), newDrillCommand(g), newBenchCommand(), newConfigCommand(), newHealthCommand())
	return root
}
