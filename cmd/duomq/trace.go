package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/client"
	"github.com/duomq/duomq/internal/msgid"
)

func newTraceCommand(g *globalFlags) *cobra.Command {
	var pf proxyFlags
	var q client.TraceQuery
	cmd := &cobra.Command{
		Use:   "trace (--id ID [--topic T] | --key KEY --topic T) [--cluster FILE | --proxy ADDR] [--dc DC]",
		Short: "Show a message's path: born, stored, replicated, delivered to each group, retried, dead-lettered",
		Long: `Trace asks one proxy (the --dc one, else the first of the cluster file that
answers), which asks every broker of every DC, where a message was stored
(DC, broker, queue, offset), when it was replicated to the other DC, and
what each consumer group did with it: delivered and acked, in flight,
retried, dead-lettered. By key, the newest --max messages carrying it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTraceQuery(q); err != nil {
				return err
			}
			sites, err := pf.all(g)
			if err != nil {
				return err
			}
			res, err := traceThrough(cmd, g, &pf, sites, q)
			if err != nil {
				return err
			}
			for _, u := range res.Unreachable {
				fmt.Fprintf(cmd.ErrOrStderr(), "duomq: trace is missing what this broker holds: %s\n", u)
			}
			if g.output == "json" {
				return printTraceJSON(cmd.OutOrStdout(), res)
			}
			if g.output != "table" && g.output != "" {
				return fmt.Errorf("--output %q: use table or json", g.output)
			}
			return printTrace(cmd.OutOrStdout(), res)
		},
	}
	pf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&q.ID, "id", "", "message id")
	f.StringVar(&q.Key, "key", "", "message key (needs --topic)")
	f.StringVar(&q.Topic, "topic", "", "topic (required with --key; with --id it narrows the search)")
	f.IntVar(&q.Max, "max", 0, "by key: most messages to show, newest first (default 32, at most 128)")
	return cmd
}

func checkTraceQuery(q client.TraceQuery) error {
	switch {
	case (q.ID == "") == (q.Key == ""):
		return fmt.Errorf("give --id ID or --key KEY (one of them)")
	case q.Key != "" && q.Topic == "":
		return fmt.Errorf("--key needs --topic: keys are indexed per topic")
	case q.ID != "" && !msgid.Valid(q.ID):
		return fmt.Errorf("--id %q: message ids are 1 to 128 printable ASCII characters", q.ID)
	case q.Max < 0 || q.Max > 128:
		return fmt.Errorf("--max %d: use 1 to 128 (0: 32)", q.Max)
	}
	return nil
}

// traceThrough asks the proxies in turn until one answers: any proxy
// gathers every DC, so the next is tried only when one is unreachable.
func traceThrough(cmd *cobra.Command, g *globalFlags, pf *proxyFlags, sites []proxySite, q client.TraceQuery) (*client.TraceResult, error) {
	var errs []error
	for _, site := range sites {
		res, err := func() (*client.TraceResult, error) {
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			c, err := pf.connect(ctx, g, site)
			if err != nil {
				return nil, err
			}
			defer c.Close()
			return c.TraceMessage(ctx, q)
		}()
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, client.ErrTimeout) {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("proxy %s (%s): %w", dash(site.dc), site.addr, err))
	}
	return nil, errors.Join(errs...)
}

// tracedMessage is a message trace as -o json prints it.
type tracedMessage struct {
	client.MessageTrace
	Outcomes map[string]string   `json:"outcomes"`
	Timeline []client.TraceEvent `json:"timeline"`
}

func printTraceJSON(w io.Writer, res *client.TraceResult) error {
	out := struct {
		Messages    []tracedMessage `json:"messages"`
		Unreachable []string        `json:"unreachable,omitempty"`
	}{Messages: []tracedMessage{}, Unreachable: res.Unreachable}
	for _, m := range res.Messages {
		tm := tracedMessage{MessageTrace: m, Outcomes: map[string]string{}, Timeline: m.Timeline()}
		for _, gt := range m.Groups {
			tm.Outcomes[gt.Group] = gt.Outcome()
		}
		out.Messages = append(out.Messages, tm)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// printTrace writes each message's timeline, then each group's outcome.
func printTrace(w io.Writer, res *client.TraceResult) error {
	for i, m := range res.Messages {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "message %s  topic %s", m.ID, m.Topic)
		if len(m.Keys) > 0 {
			fmt.Fprintf(w, "  keys %s", strings.Join(m.Keys, ","))
		}
		if m.Tag != "" {
			fmt.Fprintf(w, "  tag %s", m.Tag)
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tSINCE-BORN\tDC\tEVENT\tDETAIL")
		for _, e := range m.Timeline() {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", eventTime(e.At), sinceBorn(m.BornTime, e.At), dash(e.DC), e.Kind, e.Text)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		var outcomes []string
		for _, gt := range m.Groups {
			outcomes = append(outcomes, gt.Group+": "+gt.Outcome())
		}
		sort.Strings(outcomes)
		if len(outcomes) == 0 {
			outcomes = []string{"no group subscribes to the topic"}
		}
		fmt.Fprintf(w, "  groups: %s\n", strings.Join(outcomes, "; "))
	}
	return nil
}

func eventTime(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.Local().Format("2006-01-02T15:04:05.000Z07:00")
}

func sinceBorn(born, t time.Time) string {
	if t.IsZero() || born.IsZero() {
		return "-"
	}
	d := t.Sub(born)
	switch {
	case d < 0:
		return "-" + (-d).Round(time.Millisecond).String()
	case d < time.Second:
		return "+" + d.Round(100*time.Microsecond).String()
	}
	return "+" + d.Round(time.Millisecond).String()
}
