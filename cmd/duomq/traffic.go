package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/duomq/duomq/dr/controller"
)

// controllerFlags find and authenticate to the controller API.
type controllerFlags struct {
	g      *globalFlags
	url    string
	token  string
	caFile string
	by     string
	reason string
}

// tokenEnv holds the controller API token when --token is not given.
const tokenEnv = "DUOMQ_CONTROLLER_TOKEN"

// writeTimeout bounds a write when --timeout is not given: a switchover
// waits for followers (the controller's catch-up-timeout, 10s by default)
// and a DC's topics run a few at a time.
const writeTimeout = 5 * time.Minute

func (cf *controllerFlags) register(cmd *cobra.Command, write bool) {
	f := cmd.PersistentFlags()
	f.StringVar(&cf.url, "controller", "", "controller API URL (default: controller_api of the cluster file)")
	f.StringVar(&cf.token, "token", "", "controller API bearer token (default: $"+tokenEnv+")")
	f.StringVar(&cf.caFile, "controller-ca", "", "CA certificate of an https controller API")
	if write {
		f.StringVar(&cf.by, "by", "duomq-cli", "who makes the change (audit)")
		f.StringVar(&cf.reason, "reason", "", "why (audit)")
	}
}

// client builds the API client from the flags, the environment and the
// cluster file.
func (cf *controllerFlags) client() (*controller.Client, error) {
	bases := []string{cf.url}
	var fileToken string
	if cf.url == "" {
		f, err := cf.g.clusterFile()
		if err != nil {
			return nil, fmt.Errorf("no controller API: use --controller URL, or a cluster file with controller_api: %w", err)
		}
		if bases = f.ControllerURLs(); len(bases) == 0 {
			return nil, errors.New("the cluster file has no controller_api: use --controller URL")
		}
		fileToken = f.ControllerToken
	}
	tok := cf.token
	if tok == "" {
		tok = os.Getenv(tokenEnv)
	}
	if tok == "" {
		tok = fileToken
	}
	if tok == "" {
		return nil, fmt.Errorf("no controller token: use --token or set $%s", tokenEnv)
	}
	var tlsCfg *tls.Config
	if cf.caFile != "" {
		pem, err := os.ReadFile(cf.caFile)
		if err != nil {
			return nil, fmt.Errorf("--controller-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--controller-ca %s holds no PEM certificate", cf.caFile)
		}
		tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return controller.NewClient(bases, tok, tlsCfg), nil
}

// ctx bounds a request: --timeout when given, else the default of reads
// or writeTimeout for writes.
func (cf *controllerFlags) ctx(cmd *cobra.Command, write bool) (context.Context, context.CancelFunc) {
	d := cf.g.timeout
	if write && !cmd.Flags().Changed("timeout") {
		d = writeTimeout
	}
	return context.WithTimeout(cmd.Context(), d)
}

// write posts a request and prints the report; a refused or failed write
// prints the transitions it ran before returning the API's error.
func (cf *controllerFlags) write(cmd *cobra.Command, path string, req any) error {
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := cf.ctx(cmd, true)
	defer cancel()
	var rep controller.APIReport
	err = c.Do(ctx, http.MethodPost, path, req, &rep)
	var ae *controller.StatusError
	if errors.As(err, &ae) {
		if len(ae.Body.Transitions) > 0 {
			cf.printReport(cmd.OutOrStdout(), controller.APIReport{Transitions: ae.Body.Transitions})
		}
		return err
	}
	if err != nil {
		return err
	}
	return cf.printReport(cmd.OutOrStdout(), rep)
}

var reportHeader = []string{"TOPIC", "KIND", "FROM", "TO", "OUTCOME", "EPOCH", "PAUSE", "DURATION", "ERROR"}

func (cf *controllerFlags) printReport(w io.Writer, rep controller.APIReport) error {
	if cf.g.output == "json" {
		return cf.g.print(w, rep, nil, nil)
	}
	if rep.Traffic != nil {
		fmt.Fprintf(w, "traffic: %s\n", trafficLine(rep.Traffic.Weights, rep.Traffic.BlockedDCs))
	}
	if rep.DC != "" {
		fmt.Fprintf(w, "dc %s is %s\n", rep.DC, rep.DCState)
	}
	if !rep.Changed && len(rep.Transitions) == 0 {
		fmt.Fprintln(w, "nothing to change")
		return nil
	}
	if len(rep.Transitions) == 0 {
		return nil
	}
	rows := make([][]string, 0, len(rep.Transitions))
	for _, o := range rep.Transitions {
		errText := o.Error
		if o.Reason != "" {
			errText = o.Reason + ": " + errText
		}
		rows = append(rows, []string{o.Topic, string(o.Kind), o.From, o.To, o.Outcome.Outcome,
			fmt.Sprintf("%d->%d", o.Before.Epoch, o.After.Epoch), seconds(o.PauseSeconds), seconds(o.DurationSeconds), dash(errText)})
	}
	return cf.g.print(w, nil, reportHeader, rows)
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

// trafficLine describes weights and blocked DCs in one line.
func trafficLine(weights map[string]int, blocked []string) string {
	var parts []string
	for _, dc := range slices.Sorted(maps.Keys(weights)) {
		parts = append(parts, fmt.Sprintf("%s=%d", dc, weights[dc]))
	}
	s := "weights " + strings.Join(parts, ",")
	if len(parts) == 0 {
		s = "every active dc equally"
	}
	if len(blocked) > 0 {
		s += "; blocked: " + strings.Join(blocked, ",")
	}
	return s
}

func newTrafficCommand(g *globalFlags) *cobra.Command {
	cf := &controllerFlags{g: g}
	cmd := &cobra.Command{Use: "traffic", Short: "Show and switch where writes go (through the controller API)"}
	cf.register(cmd, true)
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the traffic policy: weights of unordered writes and blocked DCs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, cancel := cf.ctx(cmd, false)
			defer cancel()
			var tv controller.TrafficView
			if err := c.Do(ctx, http.MethodGet, "/v1/traffic", nil, &tv); err != nil {
				return err
			}
			rows := [][]string{}
			for _, d := range tv.DCs {
				w := "-"
				if len(tv.Traffic.Weights) > 0 {
					w = strconv.Itoa(tv.Traffic.Weights[d.Name])
				}
				rows = append(rows, []string{d.Name, string(d.State), w, yesNo(slices.Contains(tv.Traffic.BlockedDCs, d.Name))})
			}
			if err := g.print(cmd.OutOrStdout(), tv, []string{"DC", "STATE", "WEIGHT", "BLOCKED"}, rows); err != nil || g.output == "json" {
				return err
			}
			for _, topic := range slices.Sorted(maps.Keys(tv.Traffic.TopicOverrides)) {
				fmt.Fprintf(cmd.OutOrStdout(), "override %s: %s\n", topic, trafficLine(tv.Traffic.TopicOverrides[topic], nil))
			}
			return nil
		},
	}
	switchCmd := &cobra.Command{
		Use:   "switch DC",
		Short: "Send all traffic to DC: unordered weights {DC: 100, others: 0} and a switchover of every ordered topic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.write(cmd, "/v1/traffic/switch", controller.TargetRequest{DC: args[0], Actor: cf.by, Reason: cf.reason})
		},
	}
	weights := &cobra.Command{
		Use:   "weights DC=W[,DC=W...]",
		Short: "Set the weights of unordered writes per DC (a DC left out gets none)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := parseWeights(strings.Join(args, ","))
			if err != nil {
				return err
			}
			return cf.write(cmd, "/v1/traffic/weights", controller.WeightsRequest{Weights: w, Actor: cf.by, Reason: cf.reason})
		},
	}
	block := &cobra.Command{
		Use:   "block DC",
		Short: "Stop unordered writes to DC (they go to the other DCs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.write(cmd, "/v1/traffic/block", controller.TargetRequest{DC: args[0], Actor: cf.by, Reason: cf.reason})
		},
	}
	unblock := &cobra.Command{
		Use:   "unblock DC",
		Short: "Let DC take unordered writes again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.write(cmd, "/v1/traffic/unblock", controller.TargetRequest{DC: args[0], Actor: cf.by, Reason: cf.reason})
		},
	}
	cmd.AddCommand(show, switchCmd, weights, block, unblock)
	return cmd
}

// parseWeights parses "idc-a=70,idc-b=30".
func parseWeights(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		dc, v, ok := strings.Cut(part, "=")
		dc = strings.TrimSpace(dc)
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || dc == "" || err != nil {
			return nil, fmt.Errorf("weights: %q: use DC=WEIGHT, e.g. idc-a=70,idc-b=30", part)
		}
		if _, dup := out[dc]; dup {
			return nil, fmt.Errorf("weights: dc %s given twice", dc)
		}
		out[dc] = n
	}
	if len(out) == 0 {
		return nil, errors.New("weights: none given: use DC=WEIGHT, e.g. idc-a=70,idc-b=30")
	}
	return out, nil
}

// topicOrDC registers --topic and --dc.
func topicOrDC(cmd *cobra.Command, topic, dc *string) {
	cmd.Flags().StringVar(topic, "topic", "", "one ordered topic")
	cmd.Flags().StringVar(dc, "dc", "", "every ordered topic of this DC")
	cmd.MarkFlagsOneRequired("topic", "dc")
	cmd.MarkFlagsMutuallyExclusive("topic", "dc")
}

func newSwitchoverCommand(g *globalFlags) *cobra.Command {
	cf := &controllerFlags{g: g}
	var topic, dc, to string
	cmd := &cobra.Command{
		Use:   "switchover (--topic T | --dc A) --to B",
		Short: "Planned move of ordered topics' primary to DC B with zero loss (write pause reported)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.write(cmd, "/v1/switchover", controller.SwitchoverRequest{Topic: topic, DC: dc, To: to, Actor: cf.by, Reason: cf.reason})
		},
	}
	cf.register(cmd, true)
	topicOrDC(cmd, &topic, &dc)
	cmd.Flags().StringVar(&to, "to", "", "the new primary DC")
	cmd.MarkFlagRequired("to")
	return cmd
}

func newFailoverCommand(g *globalFlags) *cobra.Command {
	cf := &controllerFlags{g: g}
	var topic, dc, to string
	var force bool
	cmd := &cobra.Command{
		Use:   "failover (--topic T | --dc A) --to B [--force]",
		Short: "Unplanned move of ordered topics' primary away from a DC that is down (--dc also marks it down)",
		Long: `Fail over ordered topics whose primary DC has no alive broker (so it can accept no
ordered write). With --force, a primary that still has alive brokers is blocked and
fenced first, and its brokers' lease is waited out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.write(cmd, "/v1/failover", controller.FailoverRequest{Topic: topic, DC: dc, To: to, Force: force, Actor: cf.by, Reason: cf.reason})
		},
	}
	cf.register(cmd, true)
	topicOrDC(cmd, &topic, &dc)
	cmd.Flags().StringVar(&to, "to", "", "the new primary DC")
	cmd.Flags().BoolVar(&force, "force", false, "fail over even though the primary DC has alive brokers")
	cmd.MarkFlagRequired("to")
	return cmd
}

func newFailbackCommand(g *globalFlags) *cobra.Command {
	cf := &controllerFlags{g: g}
	var topic, dc string
	cmd := &cobra.Command{
		Use:   "failback (--topic T | --dc A)",
		Short: "Return ordered topics to their home DC once it is back (sets it active, waits for its followers, switches over)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.write(cmd, "/v1/failback", controller.FailbackRequest{Topic: topic, DC: dc, Actor: cf.by, Reason: cf.reason})
		},
	}
	cf.register(cmd, true)
	cmd.Flags().StringVar(&topic, "topic", "", "one ordered topic")
	cmd.Flags().StringVar(&dc, "dc", "", "every ordered topic whose home is this DC")
	cmd.MarkFlagsOneRequired("topic", "dc")
	cmd.MarkFlagsMutuallyExclusive("topic", "dc")
	return cmd
}

func newStatusCommand(g *globalFlags) *cobra.Command {
	cf := &controllerFlags{g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show DCs, ordered topics, replication and consumer lag, traffic and transitions (from the controller)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx, cancel := cf.ctx(cmd, false)
			defer cancel()
			var st controller.Status
			if err := c.Do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
				return err
			}
			if g.output == "json" {
				return g.print(cmd.OutOrStdout(), st, nil, nil)
			}
			if g.output != "table" && g.output != "" {
				return fmt.Errorf("--output %q: use table or json", g.output)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cf.register(cmd, false)
	return cmd
}

// printStatus writes the status as tables, one per section.
func printStatus(out io.Writer, st controller.Status) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	leader := "none"
	if st.Leader != nil {
		leader = st.Leader.ID
		if st.Leader.APIURL != "" {
			leader += " (" + st.Leader.APIURL + ")"
		}
	}
	fmt.Fprintf(w, "LEADER\t%s\tanswered by %s\n\n", leader, st.Controller)
	fmt.Fprintln(w, "DC\tSTATE\tDOWN\tALIVE\tPROXIES\tUNHEALTHY\tBROKERS")
	for _, d := range st.DCs {
		var bs []string
		for _, a := range d.Alive {
			bs = append(bs, a.Name+"@"+a.Address)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", d.Name, d.State, yesNo(d.Down), len(d.Alive), d.Proxies,
			dash(strings.Join(d.Unhealthy, "; ")), dash(strings.Join(bs, ",")))
	}
	printReplicaSets(w, st.DCs)
	fmt.Fprintf(w, "\nTRAFFIC\t%s\n", trafficLine(st.Traffic.Weights, st.Traffic.BlockedDCs))
	fmt.Fprintln(w, "\nTOPIC\tPRIMARY\tHOME\tEPOCH\tBLOCKED\tREPLICATION\tOUT-OF-SYNC\tMAX-LAG")
	for _, o := range st.Ordered {
		maxLag := "-"
		for _, l := range o.Lag {
			if maxLag == "-" || l.Messages > 0 {
				maxLag = fmt.Sprintf("%d (%s q%d)", l.Messages, l.DC, l.Queue)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", o.Topic, o.Primary, o.Home, o.Epoch, yesNo(o.Blocked), o.Replication,
			dash(strings.Join(o.OutOfSync, ",")), maxLag)
	}
	if len(st.ConsumerLag) > 0 {
		fmt.Fprintln(w, "\nGROUP\tTOPIC\tDC\tLAG")
		for _, l := range st.ConsumerLag {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", l.Group, l.Topic, l.DC, l.Messages)
		}
	}
	if len(st.Transitions) > 0 {
		fmt.Fprintln(w, "\nTRANSITION\tKIND\tTOPIC\tFROM\tTO\tPHASE\tSTARTED\tACTOR")
		for _, t := range st.Transitions {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Kind, t.Topic, t.From, t.To, t.Phase, t.Started.Format(time.RFC3339), t.Actor)
		}
	}
	fmt.Fprintln(w, "\nETCD\tENDPOINT\tREACHABLE\tLEADER")
	for _, m := range st.Etcd {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", dash(m.Name), dash(m.Endpoint), yesNo(m.Reachable), yesNo(m.Leader))
	}
	for _, e := range st.Errors {
		fmt.Fprintf(w, "\nerror: %s", e)
	}
	if len(st.Errors) > 0 {
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// printReplicaSets writes a line per replica set of more than one broker
// (a broker alone in its set is in the DC line already), none without.
func printReplicaSets(w io.Writer, dcs []controller.DCStatus) {
	header := "\nREPLICA-SET\tDC\tLEADER\tSTATE\tTERM\tSTANDBYS"
	for _, d := range dcs {
		for _, rs := range d.ReplicaSets {
			if len(rs.Standbys) == 0 {
				continue
			}
			if header != "" {
				fmt.Fprintln(w, header)
				header = ""
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", rs.Set, d.Name, rs.Leader, leaderState(rs), termCell(rs.Term), standbysCell(rs.Standbys))
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
