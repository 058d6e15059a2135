package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/client"
)

func newDLQCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "List and re-drive a consumer group's dead letters (%DLQ%<group>) through the proxies"}
	cmd.AddCommand(dlqList(g), dlqRedrive(g))
	return cmd
}

// deadLetter is one dead letter as dlq list shows it.
type deadLetter struct {
	DC         string            `json:"dc"`
	ID         string            `json:"id"`
	Topic      string            `json:"topic"`
	Tag        string            `json:"tag,omitempty"`
	Keys       []string          `json:"keys,omitempty"`
	Queue      uint32            `json:"queue"`
	Offset     int64             `json:"offset"`
	Reconsume  int32             `json:"reconsume"`
	StoreTime  time.Time         `json:"store_time"`
	Properties map[string]string `json:"properties,omitempty"`
	Body       string            `json:"body"`
}

func dlqList(g *globalFlags) *cobra.Command {
	var pf proxyFlags
	var group string
	var maxMessages int
	cmd := &cobra.Command{
		Use:   "list --group G [--cluster FILE | --proxy ADDR] [--dc DC] [--max N]",
		Short: "List a group's dead letters in every DC (or one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sites, err := pf.all(g)
			if err != nil {
				return err
			}
			out := []deadLetter{}
			err = eachProxy(cmd, g, &pf, sites, func(ctx context.Context, c *client.Client, site proxySite) error {
				ms, err := c.ListDeadLetters(ctx, group, maxMessages)
				for _, m := range ms {
					dc := firstNonEmpty(m.DC, site.dc)
					out = append(out, deadLetter{DC: dc, ID: m.ID, Topic: m.Topic, Tag: m.Tag, Keys: m.Keys, Queue: m.Queue,
						Offset: m.Offset, Reconsume: m.ReconsumeTimes, StoreTime: m.StoreTime, Properties: m.Properties, Body: string(m.Body)})
				}
				return err
			})
			rows := make([][]string, 0, len(out))
			for _, d := range out {
				rows = append(rows, []string{d.DC, d.ID, d.Topic, dash(d.Tag), dash(strings.Join(d.Keys, ",")),
					strconv.Itoa(int(d.Reconsume)), d.StoreTime.Format(time.RFC3339), preview(d.Body, 40)})
			}
			if perr := g.print(cmd.OutOrStdout(), out, []string{"DC", "ID", "TOPIC", "TAG", "KEYS", "RECONSUME", "STORED", "BODY"}, rows); perr != nil {
				return perr
			}
			return err
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&group, "group", "", "consumer group")
	cmd.Flags().IntVar(&maxMessages, "max", 100, "most dead letters to list per DC")
	cmd.MarkFlagRequired("group")
	return cmd
}

func dlqRedrive(g *globalFlags) *cobra.Command {
	var pf proxyFlags
	var group string
	var ids []string
	cmd := &cobra.Command{
		Use:   "redrive --group G [--id ID]... [--cluster FILE | --proxy ADDR] [--dc DC]",
		Short: "Send a group's dead letters (all, or the --id ones) back to their topic",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sites, err := pf.all(g)
			if err != nil {
				return err
			}
			type result struct {
				DC       string `json:"dc"`
				Redriven int    `json:"redriven"`
			}
			out := []result{}
			err = eachProxy(cmd, g, &pf, sites, func(ctx context.Context, c *client.Client, site proxySite) error {
				n, err := c.RedriveDeadLetters(ctx, group, ids)
				if err == nil {
					out = append(out, result{DC: dash(site.dc), Redriven: n})
				}
				return err
			})
			rows := make([][]string, 0, len(out))
			for _, r := range out {
				rows = append(rows, []string{r.DC, strconv.Itoa(r.Redriven)})
			}
			if perr := g.print(cmd.OutOrStdout(), out, []string{"DC", "REDRIVEN"}, rows); perr != nil {
				return perr
			}
			return err
		},
	}
	pf.register(cmd)
	cmd.Flags().StringVar(&group, "group", "", "consumer group")
	cmd.Flags().StringArrayVar(&ids, "id", nil, "message id to re-drive (repeatable; default: every dead letter)")
	cmd.MarkFlagRequired("group")
	return cmd
}

// preview shortens s to n runes for a table cell.
func preview(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}
