package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
)

func newDCCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "dc", Short: "Data centers: list, describe, register, set state, brokers, replica sets"}
	cmd.AddCommand(dcList(g), dcDescribe(g), dcPut(g), dcSetState(g), dcBrokers(g), dcSets(g), dcForgetBroker(g))
	return cmd
}

var dcHeader = []string{"NAME", "STATE", "CIDRS", "UPDATED-BY", "UPDATED-AT"}

func dcRow(d meta.DC) []string {
	return []string{d.Name, string(d.State), dash(strings.Join(d.CIDRs, ",")), dash(d.UpdatedBy), d.UpdatedAt.Format(time.RFC3339)}
}

func dcList(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List data centers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				ds, _, err := s.ListDCs(ctx)
				if err != nil {
					return err
				}
				rows := make([][]string, 0, len(ds))
				for _, d := range ds {
					rows = append(rows, dcRow(d))
				}
				return g.print(cmd.OutOrStdout(), ds, dcHeader, rows)
			})
		},
	}
}

func dcDescribe(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a data center",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				d, _, err := s.GetDC(ctx, args[0])
				if err != nil {
					return err
				}
				return g.print(cmd.OutOrStdout(), d, dcHeader, [][]string{dcRow(d)})
			})
		},
	}
}

func dcPut(g *globalFlags) *cobra.Command {
	var cidrs []string
	var by string
	cmd := &cobra.Command{
		Use:   "put NAME [--cidr CIDR]...",
		Short: "Register a data center or replace its address ranges",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				d := meta.DC{Name: args[0], CIDRs: cidrs, State: meta.DCActive, UpdatedBy: by}
				if old, _, err := s.GetDC(ctx, args[0]); err == nil {
					d.State = old.State
				}
				if _, err := s.PutDC(ctx, d); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "dc %s registered\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&cidrs, "cidr", nil, "address range of the DC (repeatable), for SDK IP look-up")
	cmd.Flags().StringVar(&by, "by", "duomq-cli", "who makes the change (audit)")
	return cmd
}

func dcSetState(g *globalFlags) *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "set-state NAME active|draining|down",
		Short: "Set a data center's state",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				if _, err := s.SetDCState(ctx, args[0], meta.DCState(args[1]), by); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "dc %s is %s\n", args[0], args[1])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", "duomq-cli", "who makes the change (audit)")
	return cmd
}

// dcBrokers lists a DC's placement: the registered brokers, live or not,
// and the replicated queues each holds.
func dcBrokers(g *globalFlags) *cobra.Command {
	var queues int
	cmd := &cobra.Command{
		Use:   "brokers NAME",
		Short: "List a data center's registered brokers (the placement of replicated queues), live or down",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				all, _, err := s.ListPlacement(ctx)
				if err != nil {
					return err
				}
				slots := all[args[0]]
				type row struct {
					Name    string `json:"name"`
					Live    bool   `json:"live"`
					Address string `json:"address,omitempty"`
					Queues  []int  `json:"queues"`
				}
				out := make([]row, len(slots))
				rows := make([][]string, len(slots))
				for i, sl := range slots {
					out[i] = row{Name: sl.Name, Live: sl.Live, Address: sl.Alive.Address, Queues: []int{}}
					for q := i; q < queues; q += len(slots) {
						out[i].Queues = append(out[i].Queues, q)
					}
					state := "down"
					if sl.Live {
						state = "live"
					}
					qs := make([]string, len(out[i].Queues))
					for j, q := range out[i].Queues {
						qs[j] = fmt.Sprint(q)
					}
					rows[i] = []string{sl.Name, state, dash(sl.Alive.Address), dash(strings.Join(qs, ","))}
				}
				return g.print(cmd.OutOrStdout(), out, []string{"BROKER", "STATE", "ADDRESS", "QUEUES"}, rows)
			})
		},
	}
	cmd.Flags().IntVar(&queues, "queues", 8, "queue count of the topic whose placement to show")
	return cmd
}

// setView is a replica set of a DC as `duomq dc sets` shows it: the
// controller status's view plus when and why its leader record last
// changed (or why a set of several brokers has no leader).
type setView struct {
	DC string `json:"dc"`
	controller.ReplicaSetStatus
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
}

// dcSets lists the replica sets of a DC's placement, or of every DC's: a
// broker alone in its set (which has no leader record) is a set of one.
func dcSets(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "sets [DC]",
		Short: "List the replica sets of a data center, or of every one: leader, term, standbys live and in sync",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				all, _, err := s.ListPlacement(ctx)
				if err != nil {
					return err
				}
				dcs := slices.Sorted(maps.Keys(all))
				if len(args) == 1 {
					if _, ok := all[args[0]]; !ok {
						if _, _, err := s.GetDC(ctx, args[0]); err != nil {
							return err
						}
					}
					dcs = args
				}
				out := []setView{}
				for _, dc := range dcs {
					for _, rs := range controller.ReplicaSetsOf(all[dc]) {
						v, err := viewSet(ctx, s, dc, rs)
						if err != nil {
							return err
						}
						out = append(out, v)
					}
				}
				rows := make([][]string, len(out))
				for i, v := range out {
					rows[i] = setRow(v)
				}
				return g.print(cmd.OutOrStdout(), out, []string{"DC", "SET", "LEADER", "STATE", "TERM", "STANDBYS", "UPDATED-AT", "REASON"}, rows)
			})
		},
	}
}

// viewSet adds the leader record's time and reason to a set of several
// brokers. The placement ignores a record whose leader is not a member
// of the set (forgotten); the reason then says so.
func viewSet(ctx context.Context, s *meta.Store, dc string, rs controller.ReplicaSetStatus) (setView, error) {
	v := setView{DC: dc, ReplicaSetStatus: rs}
	if len(rs.Standbys) == 0 && rs.Term == 0 {
		return v, nil // a broker alone in its set has no record
	}
	rec, _, err := s.GetReplicaSet(ctx, dc, rs.Set)
	switch {
	case errors.Is(err, meta.ErrNotFound) && rs.Term == 0:
		v.Reason = "no leader record yet: " + rs.Leader + ", the set's first live member by name, writes it"
		return v, nil
	case err != nil:
		return v, err
	}
	v.UpdatedAt, v.Reason = rec.UpdatedAt, rec.Reason
	if rs.Term == 0 {
		v.Reason = fmt.Sprintf("its leader record (term %d) names %s, which is not a member of the set; last change: %s", rec.Term, rec.Leader, rec.Reason)
	}
	return v, nil
}

func setRow(v setView) []string {
	updated := "-"
	if !v.UpdatedAt.IsZero() {
		updated = v.UpdatedAt.Format(time.RFC3339)
	}
	return []string{v.DC, v.Set, v.Leader, leaderState(v.ReplicaSetStatus), termCell(v.Term), standbysCell(v.Standbys), updated, dash(v.Reason)}
}

func dcForgetBroker(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "forget-broker DC BROKER",
		Short: "Remove a stopped broker from its data center's placement (its queues move to the remaining brokers, which lack their data)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s *meta.Store) error {
				if _, err := s.ForgetBroker(ctx, args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "broker %s forgotten in %s\n", args[1], args[0])
				return nil
			})
		},
	}
}

// leaderState says whether a replica set's leader serves its queues:
// live, down, or no-leader for a set of several brokers without a leader
// record naming one of them (none of them serves).
func leaderState(rs controller.ReplicaSetStatus) string {
	switch {
	case rs.LeaderLive:
		return "live"
	case rs.Term == 0 && len(rs.Standbys) > 0:
		return "no-leader"
	}
	return "down"
}

// termCell is a set's term, "-" without a leader record.
func termCell(term uint64) string {
	if term == 0 {
		return "-"
	}
	return strconv.FormatUint(term, 10)
}

// standbysCell lists standbys as name(live|down,in-sync|out-of-sync).
func standbysCell(ss []controller.StandbyStatus) string {
	cells := make([]string, len(ss))
	for i, s := range ss {
		live, sync := "down", "out-of-sync"
		if s.Live {
			live = "live"
		}
		if s.InSync {
			sync = "in-sync"
		}
		cells[i] = s.Name + "(" + live + "," + sync + ")"
	}
	return dash(strings.Join(cells, " "))
}
