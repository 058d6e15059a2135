package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/dr/meta"
)

func newTopicCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "topic", Short: "Create, change, delete and list topics in the global metadata"}
	cmd.AddCommand(topicCreate(g), topicUpdate(g), topicDelete(g), topicList(g), topicDescribe(g))
	return cmd
}

type topicFlags struct {
	queues      int
	ordered     bool
	primary     string
	replication string
	syncPolicy  string
	retention   time.Duration
	maxBytes    int64
	minInSync   int
}

func (f *topicFlags) register(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	fl.IntVar(&f.queues, "queues", 0, "queue count (per DC for unordered topics); may only grow")
	fl.StringVar(&f.replication, "replication", "", "none, async or sync (default: sync for ordered topics, none otherwise)")
	fl.StringVar(&f.syncPolicy, "sync-policy", "", "replication sync only: while a follower DC is out of the in-sync set, sends fail (fail, the default) or are acked by the primary DC alone (degrade)")
	fl.DurationVar(&f.retention, "retention", 0, "how long messages are kept (default 72h)")
	fl.Int64Var(&f.maxBytes, "max-message-bytes", 0, "largest message body accepted (default 4 MiB)")
	fl.IntVar(&f.minInSync, "min-in-sync-replicas", 0, fmt.Sprintf("replicated topics: the fewest copies of a message, the leader's included, that must hold it before it is acked "+
		"(the leader, its in-sync standbys and, with replication sync, each in-sync follower DC); every in-sync copy is still waited for, "+
		"and below the floor sends are refused at once (default 1, at most %d)", meta.MaxMinInSyncReplicas))
	if create {
		fl.BoolVar(&f.ordered, "ordered", false, "ordered topic: one set of queues led by the primary DC")
		fl.StringVar(&f.primary, "primary", "", "home DC of an ordered topic")
		cmd.MarkFlagRequired("queues")
	}
}

func topicCreate(g *globalFlags) *cobra.Command {
	var f topicFlags
	cmd := &cobra.Command{
		Use:   "create NAME --queues N [--ordered --primary DC] [--replication none|async|sync] [--sync-policy fail|degrade] [--min-in-sync-replicas N]",
		Short: "Create a topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := meta.Topic{Name: args[0], Queues: f.queues, Ordered: f.ordered, Primary: f.primary,
				Replication: meta.Replication(f.replication), SyncPolicy: meta.SyncPolicy(f.syncPolicy),
				RetentionAge: f.retention, MaxMessageBytes: f.maxBytes, MinInSyncReplicas: f.minInSync}
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				if _, err := s.CreateTopic(ctx, t); err != nil {
					return err
				}
				return describeTopic(ctx, cmd, g, s, t.Name)
			})
		},
	}
	f.register(cmd, true)
	return cmd
}

func topicUpdate(g *globalFlags) *cobra.Command {
	var f topicFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--queues N] [--replication R] [--sync-policy P] [--retention D] [--max-message-bytes B] [--min-in-sync-replicas N]",
		Short: "Change a topic (its primary moves only by switchover)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				t, rev, err := s.GetTopic(ctx, args[0])
				if err != nil {
					return err
				}
				fl := cmd.Flags()
				if fl.Changed("queues") {
					t.Queues = f.queues
				}
				if fl.Changed("replication") {
					t.Replication = meta.Replication(f.replication)
					if t.Replication != meta.ReplicationSync {
						t.SyncPolicy = "" // a policy of sync replication only
					}
				}
				if fl.Changed("sync-policy") {
					t.SyncPolicy = meta.SyncPolicy(f.syncPolicy)
				}
				if fl.Changed("retention") {
					t.RetentionAge = f.retention
				}
				if fl.Changed("max-message-bytes") {
					t.MaxMessageBytes = f.maxBytes
				}
				if fl.Changed("min-in-sync-replicas") {
					t.MinInSyncReplicas = f.minInSync
				}
				if _, err := s.UpdateTopic(ctx, t, rev); err != nil {
					return err
				}
				return describeTopic(ctx, cmd, g, s, t.Name)
			})
		},
	}
	f.register(cmd, false)
	return cmd
}

func topicDelete(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a topic (brokers in every DC drop its queues)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				if _, err := s.DeleteTopic(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "topic %s deleted\n", args[0])
				return nil
			})
		},
	}
}

func topicList(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				ts, _, err := s.ListTopics(ctx)
				if err != nil {
					return err
				}
				rows := make([][]string, 0, len(ts))
				for i, t := range ts {
					ts[i] = shownTopic(t)
					rows = append(rows, topicRow(ts[i]))
				}
				return g.print(cmd.OutOrStdout(), ts, topicHeader, rows)
			})
		},
	}
}

var topicHeader = []string{"NAME", "ORDERED", "QUEUES", "PRIMARY", "REPLICATION", "SYNC-POLICY", "MIN-IN-SYNC", "RETENTION", "MAX-MESSAGE-BYTES"}

func topicRow(t meta.Topic) []string {
	return []string{t.Name, strconv.FormatBool(t.Ordered), strconv.Itoa(t.Queues), dash(t.Primary), string(t.Replication),
		dash(string(t.SyncPolicy)), strconv.Itoa(t.MinInSyncReplicas), t.RetentionAge.String(), strconv.FormatInt(t.MaxMessageBytes, 10)}
}

// shownTopic fills in the default a topic record leaves implicit, so that
// the table and the JSON both say what the brokers apply: a
// min_in_sync_replicas of 0 (not set) means 1, the leader's copy alone.
func shownTopic(t meta.Topic) meta.Topic {
	t.MinInSyncReplicas = max(t.MinInSyncReplicas, 1)
	return t
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func topicDescribe(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic, and for an ordered topic its serving primary and epoch",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				return describeTopic(ctx, cmd, g, s, args[0])
			})
		},
	}
}

// topicView is a topic with its fencing state.
type topicView struct {
	Topic   meta.Topic    `json:"topic"`
	Serving *meta.Ordered `json:"serving,omitempty"`
}

func describeTopic(ctx context.Context, cmd *cobra.Command, g *globalFlags, s *meta.Store, name string) error {
	t, _, err := s.GetTopic(ctx, name)
	if err != nil {
		return err
	}
	t = shownTopic(t)
	v := topicView{Topic: t}
	header, row := topicHeader, topicRow(t)
	if t.Ordered {
		o, _, err := s.GetOrdered(ctx, name)
		if err != nil {
			return err
		}
		v.Serving = &o
		header = append(append([]string{}, header...), "SERVING-PRIMARY", "EPOCH")
		row = append(row, o.Primary, strconv.FormatUint(o.Epoch, 10))
	}
	return g.print(cmd.OutOrStdout(), v, header, [][]string{row})
}
