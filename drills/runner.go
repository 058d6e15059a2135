package drills

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/duomq/duomq/client"
	"github.com/duomq/duomq/devcluster"
	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
)

// Options shape a run.
type Options struct {
	// ClusterFile runs the drill against an existing cluster (overrides
	// the scenario's topology).
	ClusterFile string
	// Dir holds the local topology (default: a new temporary directory,
	// removed afterwards).
	Dir string
	// Binary is the duomq executable the local topology runs (default:
	// this process's executable).
	Binary string
	// Out receives progress lines.
	Out    io.Writer
	Logger *slog.Logger
	// Drain bounds the wait, after the last step, for consumers to read
	// what is left (they stop earlier after drainIdle without a delivery).
	Drain time.Duration
}

// drillRun is one run's state.
type drillRun struct {
	s       Scenario
	o       Options
	f       clusterfile.File
	store   *meta.Store
	rec     *recorder
	rep     *Report
	faults  map[string]*Window // open fault windows by key
	step    atomic.Value       // string: the step running now (progress)
	windows []Window
	http    *http.Client
}

// Run runs a scenario: it sets up the topology (starting the local one
// if asked), creates the workload's topics and groups, starts the
// producers and consumers, runs the steps in order, stops the producers,
// lets the consumers drain, and scores the records. Every fault it
// injected is undone before it returns (a site it killed is restarted, a
// partition healed), also when a step fails or ctx ends; one that cannot
// be undone fails the report.
func Run(ctx context.Context, s Scenario, o Options) (*Report, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Drain <= 0 {
		o.Drain = 45 * time.Second
	}
	r := &drillRun{s: s, o: o, rec: &recorder{}, faults: map[string]*Window{}, rep: &Report{Version: ReportVersion, Scenario: s.Name},
		http: &http.Client{Timeout: 5 * time.Minute}}
	stop, err := r.topology(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	cli, err := meta.NewClient(r.f.EtcdEndpoints())
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	r.store = meta.New(cli, meta.Options{Logger: o.Logger})
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	rep, err := r.run(ctx)
	if err == nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := Save(sctx, r.store, rep); err != nil {
			fmt.Fprintf(o.Out, "drill: the report was not stored in the drill history: %v\n", err)
		}
	}
	return rep, err
}

// topology loads the cluster file or starts the local topology.
func (r *drillRun) topology(ctx context.Context) (func(), error) {
	path := r.o.ClusterFile
	if path == "" {
		path = r.s.Topology.Cluster
	}
	if path != "" {
		f, err := clusterfile.Load(path)
		r.f = f
		return func() {}, err
	}
	lt := LocalTopology{}
	if r.s.Topology.Local != nil {
		lt = *r.s.Topology.Local
	}
	dir, cleanup := r.o.Dir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "duomq-drill-")
		if err != nil {
			return nil, err
		}
		dir, cleanup = d, func() { os.RemoveAll(d) }
	}
	bin := r.o.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	sup, err := devcluster.NewSupervisor(devcluster.SupervisorOptions{
		Options: devcluster.Options{Dir: dir, BrokersPerDC: lt.BrokersPerDC, FlushMode: lt.FlushMode, Netns: lt.Netns},
		Binary:  bin, Out: io.Discard, Logger: r.o.Logger,
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(sctx) }()
	stop := func() { cancel(); <-done; cleanup() }
	fmt.Fprintf(r.o.Out, "drill: starting the local topology in %s\n", dir)
	select {
	case <-sup.Ready():
	case err := <-done:
		cancel()
		cleanup()
		return nil, fmt.Errorf("local topology: %w", err)
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	}
	f, err := clusterfile.Load(sup.ClusterFile())
	if err != nil {
		stop()
		return nil, err
	}
	r.f = f
	return stop, nil
}

// setup creates the workload's topics and groups unless they exist, and
// waits until every broker hosts the topics.
func (r *drillRun) setup(ctx context.Context) error {
	topics := map[string]TopicLoad{}
	for _, t := range r.s.Workload.Topics {
		topics[t.Name] = t
		mt := meta.Topic{Name: t.Name, Ordered: t.Ordered, Queues: max(t.Queues, 4), Primary: t.Primary, Replication: meta.Replication(t.Replication)}
		if _, err := r.store.CreateTopic(ctx, mt); err != nil && !errors.Is(err, meta.ErrExists) {
			return fmt.Errorf("topic %s: %w", t.Name, err)
		}
	}
	for _, c := range r.s.Workload.Consumers {
		g := meta.Group{Name: c.Group, Subscriptions: []meta.Subscription{{Topic: c.Topic, Tags: "*"}}, Ordered: topics[c.Topic].Ordered}
		if _, err := r.store.CreateGroup(ctx, g); err != nil && !errors.Is(err, meta.ErrExists) {
			return fmt.Errorf("group %s: %w", c.Group, err)
		}
	}
	return r.waitHosted(ctx, topics)
}

// waitHosted waits (20 s at most) until every broker of the cluster file
// lists every workload topic.
func (r *drillRun) waitHosted(ctx context.Context, topics map[string]TopicLoad) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		missing := ""
		for _, site := range r.f.Sites {
			for _, addr := range site.Brokers {
				for name := range topics {
					if !brokerHosts(ctx, addr, name) {
						missing = name + " on " + addr
					}
				}
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s not created within 20s", missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run starts the workload, runs the steps, drains and scores.
func (r *drillRun) run(ctx context.Context) (*Report, error) {
	proxies := map[string]string{}
	for name, site := range r.f.Sites {
		if site.Proxy != "" {
			proxies[name] = site.Proxy
		}
	}
	clients, err := openClients(ctx, proxies, "drill-"+r.s.Name)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	r.rep.Started = time.Now()
	prodCtx, stopProducers := context.WithCancel(ctx)
	consCtx, stopConsumers := context.WithCancel(ctx)
	var prod, cons sync.WaitGroup
	r.startWorkload(prodCtx, consCtx, clients, &prod, &cons)
	progressDone := r.progress(prodCtx)

	r.runSteps(ctx)
	stopProducers()
	prod.Wait()
	<-progressDone
	r.drain(ctx)
	stopConsumers()
	cons.Wait()
	r.undoFaults(ctx)
	return r.score(), nil
}

func (r *drillRun) startWorkload(prodCtx, consCtx context.Context, clients map[string]*client.Client, prod, cons *sync.WaitGroup) {
	topics := map[string]TopicLoad{}
	for _, t := range r.s.Workload.Topics {
		topics[t.Name] = t
	}
	for _, c := range r.s.Workload.Consumers {
		if cl := clients[c.DC]; cl != nil {
			cons.Go(func() { consume(consCtx, cl, c, topics[c.Topic], r.rec) })
		}
	}
	id := 0
	for _, p := range r.s.Workload.Producers {
		for range max(p.Count, 1) {
			if cl := clients[p.DC]; cl != nil {
				n := id
				prod.Go(func() { produce(prodCtx, cl, p, topics[p.Topic], n, r.rec) })
			}
			id++
		}
	}
}

// progress prints, every second, the current step, the elapsed time, and
// per DC the acks and deliveries of the last second and the backlog (acked
// by the DC, not yet delivered).
func (r *drillRun) progress(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		prev := map[string][2]int{}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintln(r.o.Out, r.progressLine(prev))
			}
		}
	}()
	return done
}

// progressLine is one line of progress; prev holds each DC's totals at
// the last line.
func (r *drillRun) progressLine(prev map[string][2]int) string {
	acked, delivered, backlog := r.rec.perDC()
	dcs := make([]string, 0, len(acked)+len(delivered))
	for dc := range acked {
		dcs = append(dcs, dc)
	}
	for dc := range delivered {
		if _, ok := acked[dc]; !ok {
			dcs = append(dcs, dc)
		}
	}
	sort.Strings(dcs)
	var b strings.Builder
	fmt.Fprintf(&b, "drill: %5.1fs step %-28s", time.Since(r.rep.Started).Seconds(), r.current())
	for _, dc := range dcs {
		p := prev[dc]
		fmt.Fprintf(&b, "  %s: acked %d/s delivered %d/s backlog %d", dc, acked[dc]-p[0], delivered[dc]-p[1], backlog[dc])
		prev[dc] = [2]int{acked[dc], delivered[dc]}
	}
	return b.String()
}

// drainIdle ends the drain: no delivery for this long, more than the
// consumers' invisibility (consumerInvisible), so that a message handed
// out to a receive that was abandoned is delivered again before the drill
// counts it lost.
const drainIdle = 8 * time.Second

// drain waits until consumers have received nothing for drainIdle, or Drain.
func (r *drillRun) drain(ctx context.Context) {
	deadline := time.Now().Add(r.o.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		last := r.rec.lastDelivery()
		if !last.IsZero() && time.Since(last) > drainIdle {
			return
		}
		time.Sleep(200 * time.Millisecond) // polling the records; nothing to await
	}
}

// runSteps runs the steps in order; a failed step is recorded and the
// drill goes on (the assertions decide).
func (r *drillRun) runSteps(ctx context.Context) {
	for _, st := range r.s.Steps {
		if ctx.Err() != nil {
			return
		}
		res := StepResult{Step: st, Start: time.Now()}
		r.step.Store(describe(st))
		fmt.Fprintf(r.o.Out, "drill: step %s\n", describe(st))
		detail, err := r.runStep(ctx, st)
		res.End, res.Detail = time.Now(), detail
		if err != nil {
			res.Error = err.Error()
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("step %s: %v", describe(st), err))
		}
		r.rep.Steps = append(r.rep.Steps, res)
	}
}

// current is the step running now.
func (r *drillRun) current() string {
	if s, ok := r.step.Load().(string); ok {
		return s
	}
	return "-"
}

// runStep runs one action.
func (r *drillRun) runStep(ctx context.Context, st Step) (string, error) {
	switch st.Action {
	case "wait":
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(st.For)):
			return "", nil
		}
	case "assert":
		return "checked when the drill ends", nil
	case "switch-traffic":
		return r.controller(ctx, "/v1/traffic/switch", map[string]any{"dc": st.DC, "actor": "drill"})
	case "set-weights":
		return r.controller(ctx, "/v1/traffic/weights", map[string]any{"weights": st.Weights, "actor": "drill"})
	case "switchover", "failover":
		body := map[string]any{"to": st.To, "actor": "drill"}
		target(body, st)
		if st.Action == "failover" {
			body["force"] = st.Force
		}
		r.openFault(st.Action+" "+st.Topic+st.DC, st.Action+" "+st.Topic+st.DC)
		defer r.closeFault(st.Action + " " + st.Topic + st.DC)
		return r.controller(ctx, "/v1/"+st.Action, body)
	case "failback":
		body := map[string]any{"actor": "drill"}
		target(body, st)
		return r.controller(ctx, "/v1/failback", body)
	case "kill-site":
		site, ok := r.f.Sites[st.Site]
		if !ok {
			return "", fmt.Errorf("no site %q in the cluster file", st.Site)
		}
		if err := syscall.Kill(site.PID, syscall.SIGKILL); err != nil {
			return "", fmt.Errorf("kill site %s (pid %d): %w", st.Site, site.PID, err)
		}
		r.openFault("site "+st.Site, "kill "+st.Site)
		return fmt.Sprintf("SIGKILL pid %d", site.PID), nil
	case "restart-site":
		err := r.restartSite(ctx, st.Site)
		if err == nil {
			r.closeFault("site " + st.Site)
		}
		return "", err
	case "partition":
		_, err := r.dev(ctx, "/sites/"+st.Site+"/partition?from="+url.QueryEscape(strings.Join(st.From, ",")))
		if err == nil {
			r.openFault("partition "+st.Site, "partition "+st.Site+" from "+strings.Join(st.From, ","))
		}
		return "", err
	case "heal":
		_, err := r.dev(ctx, "/sites/"+st.Site+"/heal")
		if err == nil {
			r.closeFault("partition " + st.Site)
		}
		return "", err
	}
	return "", fmt.Errorf("unknown action %q", st.Action)
}

func target(body map[string]any, st Step) {
	if st.Topic != "" {
		body["topic"] = st.Topic
	} else {
		body["dc"] = st.DC
	}
}

func (r *drillRun) openFault(key, name string) {
	r.faults[key] = &Window{Name: name, Start: time.Now()}
}

func (r *drillRun) closeFault(key string) {
	if w, ok := r.faults[key]; ok {
		w.End = time.Now()
		r.windows = append(r.windows, *w)
		delete(r.faults, key)
	}
}

// undoFaults restarts killed sites and heals partitions still open.
func (r *drillRun) undoFaults(ctx context.Context) {
	for key := range r.faults {
		var err error
		switch {
		case strings.HasPrefix(key, "site "):
			err = r.restartSite(ctx, strings.TrimPrefix(key, "site "))
		case strings.HasPrefix(key, "partition "):
			_, err = r.dev(ctx, "/sites/"+strings.TrimPrefix(key, "partition ")+"/heal")
		}
		if err != nil {
			r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("undoing %s: %v", key, err))
		}
		r.closeFault(key)
	}
}

func (r *drillRun) restartSite(ctx context.Context, site string) error {
	if _, err := r.dev(ctx, "/sites/"+site+"/restart"); err != nil {
		return err
	}
	f, err := clusterfile.Load(filepathOrEmpty(r))
	if err == nil {
		r.f = f // the restarted site has a new pid
	}
	return nil
}

// filepathOrEmpty is where the cluster file is re-read after a restart.
func filepathOrEmpty(r *drillRun) string {
	if r.o.ClusterFile != "" {
		return r.o.ClusterFile
	}
	if r.s.Topology.Cluster != "" {
		return r.s.Topology.Cluster
	}
	return r.f.Dir + "/cluster.json"
}

// controller posts to the controller API (the first candidate that
// answers) and returns a summary of its report.
func (r *drillRun) controller(ctx context.Context, path string, body any) (string, error) {
	c := controller.NewClient(r.f.ControllerURLs(), r.f.ControllerToken, nil)
	var rep controller.APIReport
	if err := c.Do(ctx, http.MethodPost, path, body, &rep); err != nil {
		return "", err
	}
	var parts []string
	for _, t := range rep.Transitions {
		parts = append(parts, fmt.Sprintf("%s %s, pause %dms", t.Topic, t.Outcome.Outcome, int(t.PauseSeconds*1000)))
	}
	return strings.Join(parts, "; "), nil
}

// dev posts to the dev API of a local topology.
func (r *drillRun) dev(ctx context.Context, path string) (string, error) {
	if r.f.DevAPI == "" {
		return "", errors.New("the cluster has no dev API (only `duomq dev` topologies restart sites and cut links)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.f.DevAPI+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("dev API %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
