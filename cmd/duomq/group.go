package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/dr/meta"
)

func newGroupCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Create, change, delete and list consumer groups"}
	cmd.AddCommand(groupCreate(g), groupUpdate(g), groupDelete(g), groupList(g), groupDescribe(g))
	return cmd
}

type groupFlags struct {
	topics     []string
	maxRetries int
	mode       string
	ordered    bool
}

func (f *groupFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.topics, "topic", nil, "subscription TOPIC or TOPIC:TAG-EXPRESSION (repeatable), e.g. orders:'paid || refunded'")
	fl.IntVar(&f.maxRetries, "max-retries", 0, "redeliveries before a message goes to %DLQ%<group> (default 16)")
	fl.StringVar(&f.mode, "mode", "", "clustering (each message to one consumer, default) or broadcast")
	fl.BoolVar(&f.ordered, "ordered", false, "consume each queue in order, one message at a time")
}

func (f *groupFlags) apply(cmd *cobra.Command, grp *meta.Group) {
	fl := cmd.Flags()
	if fl.Changed("topic") {
		grp.Subscriptions = nil
		for _, t := range f.topics {
			name, tags, _ := strings.Cut(t, ":")
			grp.Subscriptions = append(grp.Subscriptions, meta.Subscription{Topic: name, Tags: tags})
		}
	}
	if fl.Changed("max-retries") {
		grp.MaxRetries = f.maxRetries
	}
	if fl.Changed("mode") {
		grp.Mode = meta.ConsumeMode(f.mode)
	}
	if fl.Changed("ordered") {
		grp.Ordered = f.ordered
	}
}

func groupCreate(g *globalFlags) *cobra.Command {
	var f groupFlags
	cmd := &cobra.Command{
		Use:   "create NAME [--topic T[:TAGS]]... [--max-retries N] [--mode clustering|broadcast] [--ordered]",
		Short: "Create a consumer group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			grp := meta.Group{Name: args[0]}
			f.apply(cmd, &grp)
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				if _, err := s.CreateGroup(ctx, grp); err != nil {
					return err
				}
				return describeGroup(ctx, cmd, g, s, grp.Name)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func groupUpdate(g *globalFlags) *cobra.Command {
	var f groupFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--topic T[:TAGS]]... [--max-retries N] [--mode M] [--ordered]",
		Short: "Change a consumer group (--topic replaces every subscription)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				grp, rev, err := s.GetGroup(ctx, args[0])
				if err != nil {
					return err
				}
				f.apply(cmd, &grp)
				if _, err := s.UpdateGroup(ctx, grp, rev); err != nil {
					return err
				}
				return describeGroup(ctx, cmd, g, s, grp.Name)
			})
		},
	}
	f.register(cmd)
	return cmd
}

func groupDelete(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a consumer group and its offsets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				if _, err := s.DeleteGroup(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "group %s deleted\n", args[0])
				return nil
			})
		},
	}
}

var groupHeader = []string{"NAME", "SUBSCRIPTIONS", "MAX-RETRIES", "MODE", "ORDERED"}

func groupRow(grp meta.Group) []string {
	subs := make([]string, len(grp.Subscriptions))
	for i, s := range grp.Subscriptions {
		subs[i] = s.Topic + ":" + s.Tags
	}
	return []string{grp.Name, dash(strings.Join(subs, ",")), strconv.Itoa(grp.MaxRetries), string(grp.Mode), strconv.FormatBool(grp.Ordered)}
}

func groupList(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				gs, _, err := s.ListGroups(ctx)
				if err != nil {
					return err
				}
				rows := make([][]string, 0, len(gs))
				for _, grp := range gs {
					rows = append(rows, groupRow(grp))
				}
				return g.print(cmd.OutOrStdout(), gs, groupHeader, rows)
			})
		},
	}
}

func groupDescribe(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a consumer group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				return describeGroup(ctx, cmd, g, s, args[0])
			})
		},
	}
}

func describeGroup(ctx context.Context, cmd *cobra.Command, g *globalFlags, s *meta.Store, name string) error {
	grp, _, err := s.GetGroup(ctx, name)
	if err != nil {
		return err
	}
	return g.print(cmd.OutOrStdout(), grp, groupHeader, [][]string{groupRow(grp)})
}
