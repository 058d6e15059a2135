package drills

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
	// RecordsDir, when set, receives the raw records (sends.jsonl,
	// deliveries.jsonl).
	RecordsDir string
	// Drain bounds the wait, after the last step, for consumers to read
	// what is left (they stop earlier after drainIdle without a delivery).
	Drain time.Duration
}

// drillRun is one run's state.
type drillRun struct {
	s      Scenario
	o      Options
	f      clusterfile.File
	cli    *clientv3.Client
	store  *meta.Store
	rec    *recorder
	rep    *Report
	faults Faults                // the topology's fault driver
	open   map[string]*openFault // faults in place, by key
	// mu guards open, windows and rep.Steps, which background steps
	// (controller calls) share with the main sequence.
	mu sync.Mutex
	// leaderSite is the site a component step with site "leader" acted on.
	leaderSite string
	// setBroker is, by site/replica set, the broker a kill- or
	// pause-component step of the set acted on (guarded by mu).
	setBroker map[string]string
	// loadEnded is when the producers stopped.
	loadEnded time.Time
	step      atomic.Value // string: the step running now (progress)
	windows   []Window
	// metricAsserts are the metric assertions checked so far, in step
	// order (guarded by mu).
	metricAsserts []AssertionResult
}

// openFault is a fault in place: its window and how to undo it.
type openFault struct {
	w    Window
	undo func(context.Context) (string, error)
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
	r := &drillRun{s: s, o: o, rec: &recorder{}, open: map[string]*openFault{}, setBroker: map[string]string{}, rep: &Report{Version: ReportVersion, Scenario: s.Name}}
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
	r.cli, r.store = cli, meta.New(cli, meta.Options{Logger: o.Logger})
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
		if err != nil {
			return nil, err
		}
		r.f = f
		if f.Compose != nil {
			r.faults, err = newComposeFaults(f, path)
		} else {
			r.faults = newDevFaults(f, path)
		}
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
		Options: devcluster.Options{Dir: dir, BrokersPerDC: lt.BrokersPerDC, FlushMode: lt.FlushMode, Netns: lt.Netns, WAN: lt.WAN, Standbys: lt.Standbys},
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
	r.faults = newDevFaults(f, sup.ClusterFile())
	return stop, nil
}

// setup creates the workload's topics and groups unless they exist, and
// waits until every broker hosts the topics.
func (r *drillRun) setup(ctx context.Context) error {
	topics := map[string]TopicLoad{}
	for _, t := range r.s.Workload.Topics {
		topics[t.Name] = t
		mt := meta.Topic{Name: t.Name, Ordered: t.Ordered, Queues: max(t.Queues, 4), Primary: t.Primary, Replication: meta.Replication(t.Replication), MinInSyncReplicas: t.MinInSyncReplicas}
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
	// Producers give up an attempt after a second (the RTO measured is
	// the system's, not a slow client's); consumers allow three, so that
	// a receive slowed by a loaded machine is not abandoned with its
	// messages.
	clients, err := openClients(ctx, proxies, "drill-"+r.s.Name, time.Second)
	if err != nil {
		return nil, err
	}
	defer closeClients(clients)
	consClients, err := openClients(ctx, proxies, "drill-"+r.s.Name, 3*time.Second)
	if err != nil {
		return nil, err
	}
	defer closeClients(consClients)
	r.rep.Started = time.Now()
	prodCtx, stopProducers := context.WithCancel(ctx)
	consCtx, stopConsumers := context.WithCancel(ctx)
	var prod, cons sync.WaitGroup
	r.startWorkload(prodCtx, consCtx, clients, consClients, &prod, &cons)
	progressDone := r.progress(prodCtx)

	r.runSteps(ctx)
	stopProducers()
	prod.Wait()
	r.loadEnded = time.Now()
	<-progressDone
	r.drain(ctx)
	stopConsumers()
	cons.Wait()
	r.undoFaults(ctx)
	if r.o.RecordsDir != "" {
		if err := r.writeRecords(r.o.RecordsDir); err != nil {
			r.rep.Errors = append(r.rep.Errors, "writing the records: "+err.Error())
		}
	}
	return r.score(), nil
}

func (r *drillRun) startWorkload(prodCtx, consCtx context.Context, clients, consClients map[string]*client.Client, prod, cons *sync.WaitGroup) {
	topics := map[string]TopicLoad{}
	for _, t := range r.s.Workload.Topics {
		topics[t.Name] = t
	}
	for _, c := range r.s.Workload.Consumers {
		if cl := consClients[c.DC]; cl != nil {
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
	var bg sync.WaitGroup
	defer bg.Wait() // background steps end before the load stops
	for _, st := range r.s.Steps {
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(r.o.Out, "drill: step %s\n", describe(st))
		r.mu.Lock()
		idx := len(r.rep.Steps)
		r.rep.Steps = append(r.rep.Steps, StepResult{Step: st, Start: time.Now()})
		r.mu.Unlock()
		if st.Background {
			bg.Go(func() { r.finishStep(idx, st, r.runStepTimed(ctx, st)) })
			continue
		}
		r.step.Store(describe(st))
		r.finishStep(idx, st, r.runStepTimed(ctx, st))
	}
}

// stepOutcome is what a step returned, and when.
type stepOutcome struct {
	detail string
	err    error
	end    time.Time
}

func (r *drillRun) runStepTimed(ctx context.Context, st Step) stepOutcome {
	detail, err := r.runStep(ctx, st)
	return stepOutcome{detail, err, time.Now()}
}

// finishStep records a step's outcome; an error fails the drill unless
// the step allows it.
func (r *drillRun) finishStep(idx int, st Step, o stepOutcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &r.rep.Steps[idx]
	res.End, res.Detail = o.end, o.detail
	switch {
	case o.err != nil && st.AllowError:
		res.Detail = strings.TrimSpace(o.detail + " (error allowed: " + o.err.Error() + ")")
	case o.err != nil:
		res.Error = o.err.Error()
		r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("step %s: %v", describe(st), o.err))
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
		return r.wait(ctx, st)
	case "assert":
		if st.Assert.Metric == "" {
			return "checked when the drill ends", nil
		}
		return r.assertMetric(ctx, *st.Assert)
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
		key := st.Action + " " + st.Topic + st.DC
		r.openFault(key, key, nil)
		defer r.closeFault(key)
		return r.controller(ctx, "/v1/"+st.Action, body)
	case "failback":
		body := map[string]any{"actor": "drill"}
		target(body, st)
		return r.controller(ctx, "/v1/failback", body)
	}
	return r.faultStep(ctx, st)
}

// faultStep injects or undoes a fault through the topology's driver,
// recording each fault's window and how to undo it.
func (r *drillRun) faultStep(ctx context.Context, st Step) (string, error) {
	f := r.faults
	switch st.Action {
	case "kill-site":
		return r.inject(ctx, "site "+st.Site, "kill "+st.Site, func(ctx context.Context) (string, error) { return f.KillSite(ctx, st.Site) },
			func(ctx context.Context) (string, error) { return r.reloading(f.RestartSite(ctx, st.Site)) })
	case "restart-site":
		return r.undo(ctx, "site "+st.Site, func(ctx context.Context) (string, error) { return r.reloading(f.RestartSite(ctx, st.Site)) })
	case "partition":
		return r.inject(ctx, "partition "+st.Site, "partition "+st.Site+" from "+strings.Join(st.From, ","),
			func(ctx context.Context) (string, error) { return f.Partition(ctx, st.Site, st.From) },
			func(ctx context.Context) (string, error) { return f.Heal(ctx, st.Site) })
	case "heal":
		return r.undo(ctx, "partition "+st.Site, func(ctx context.Context) (string, error) { return f.Heal(ctx, st.Site) })
	case "wan-latency":
		key := "wan " + pairKey(st.Site, st.To)
		if time.Duration(st.Delay) == 0 {
			return r.undo(ctx, key, func(ctx context.Context) (string, error) { return f.WANLatency(ctx, st.Site, st.To, 0) })
		}
		r.closeFault(key) // a new delay replaces the old one's window
		return r.inject(ctx, key, fmt.Sprintf("wan %s-%s +%v", st.Site, st.To, time.Duration(st.Delay)),
			func(ctx context.Context) (string, error) {
				return f.WANLatency(ctx, st.Site, st.To, time.Duration(st.Delay))
			},
			func(ctx context.Context) (string, error) { return f.WANLatency(ctx, st.Site, st.To, 0) })
	}
	site, err := r.componentSite(ctx, st)
	if err != nil {
		return "", err
	}
	comp, err := r.componentName(ctx, st, site)
	if err != nil {
		return "", err
	}
	key := "component " + site + "/" + comp
	switch st.Action {
	case "kill-component":
		return r.inject(ctx, key, "kill "+comp+" of "+site,
			func(ctx context.Context) (string, error) { return f.KillComponent(ctx, site, comp) },
			func(ctx context.Context) (string, error) {
				return r.reloading(f.RestartComponent(ctx, site, comp))
			})
	case "restart-component":
		return r.undo(ctx, key, func(ctx context.Context) (string, error) {
			return r.reloading(f.RestartComponent(ctx, site, comp))
		})
	case "pause-component":
		return r.inject(ctx, key, "pause "+comp+" of "+site,
			func(ctx context.Context) (string, error) { return f.PauseComponent(ctx, site, comp) },
			func(ctx context.Context) (string, error) { return f.ResumeComponent(ctx, site, comp) })
	case "resume-component":
		return r.undo(ctx, key, func(ctx context.Context) (string, error) { return f.ResumeComponent(ctx, site, comp) })
	}
	return "", fmt.Errorf("unknown action %q", st.Action)
}

// componentName resolves a component step's component: Component, or
// for ReplicaSet the broker that leads the set now (kill, pause) or the
// one the last kill or pause of the set acted on (restart, resume).
func (r *drillRun) componentName(ctx context.Context, st Step, site string) (string, error) {
	if st.ReplicaSet == "" {
		return st.Component, nil
	}
	key := site + "/" + st.ReplicaSet
	if st.Action == "restart-component" || st.Action == "resume-component" {
		r.mu.Lock()
		b, ok := r.setBroker[key]
		r.mu.Unlock()
		if !ok {
			return "", fmt.Errorf("replica set %s of %s: no earlier kill- or pause-component step acted on it", st.ReplicaSet, site)
		}
		return b, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rs, _, err := r.store.GetReplicaSet(ctx, site, st.ReplicaSet)
	if err != nil {
		return "", fmt.Errorf("finding the leader of replica set %s of %s: %w", st.ReplicaSet, site, err)
	}
	r.mu.Lock()
	r.setBroker[key] = rs.Leader
	r.mu.Unlock()
	return rs.Leader, nil
}

func pairKey(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "-" + b
}

// inject puts a fault in place and opens its window.
func (r *drillRun) inject(ctx context.Context, key, name string, do, undo func(context.Context) (string, error)) (string, error) {
	r.mu.Lock()
	_, ok := r.open[key]
	r.mu.Unlock()
	if ok {
		return "", fmt.Errorf("%s is already in place", key)
	}
	detail, err := do(ctx)
	if err != nil {
		return detail, err
	}
	r.openFault(key, name, undo)
	return detail, nil
}

// undo removes a fault with do and closes its window.
func (r *drillRun) undo(ctx context.Context, key string, do func(context.Context) (string, error)) (string, error) {
	detail, err := do(ctx)
	if err == nil {
		r.closeFault(key)
	}
	return detail, err
}

// reloading re-reads the cluster file once a restart succeeded (pids and
// the ports a component picks at start change).
func (r *drillRun) reloading(detail string, err error) (string, error) {
	if err != nil {
		return detail, err
	}
	if f, lerr := r.faults.Reload(); lerr == nil {
		r.f = f
	}
	return detail, nil
}

// componentSite resolves a component step's site. "leader" is the site
// of the controller leader at this moment for kill- and pause-component,
// and the site those acted on for restart- and resume-component.
func (r *drillRun) componentSite(ctx context.Context, step Step) (string, error) {
	if step.Site != "leader" {
		return step.Site, nil
	}
	if step.Action == "restart-component" || step.Action == "resume-component" {
		if r.leaderSite == "" {
			return "", errors.New("site leader: no earlier kill- or pause-component step acted on the leader")
		}
		return r.leaderSite, nil
	}
	site, err := r.leaderNow(ctx)
	if err == nil {
		r.leaderSite = site
	}
	return site, err
}

// leaderNow is the site of the controller leader, read from the
// metadata (a controller's status may be slow while a site is down).
func (r *drillRun) leaderNow(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	li, ok, err := controller.ReadLeader(ctx, r.cli, r.store)
	if err != nil {
		return "", fmt.Errorf("finding the controller leader: %w", err)
	}
	if !ok {
		return "", errors.New("no controller leader is elected")
	}
	site, ok := r.siteOf(&li)
	if !ok {
		return "", fmt.Errorf("the controller leader %s (%s) is not a site of the cluster file", li.ID, li.APIURL)
	}
	return site, nil
}

// siteOf is the site whose controller candidate li is.
func (r *drillRun) siteOf(li *controller.LeaderInfo) (string, bool) {
	if li == nil {
		return "", false
	}
	for name, s := range r.f.Sites {
		if s.Controller != "" && strings.TrimSuffix(s.Controller, "/") == strings.TrimSuffix(li.APIURL, "/") {
			return name, true
		}
	}
	return "", false
}

func target(body map[string]any, st Step) {
	if st.Topic != "" {
		body["topic"] = st.Topic
	} else {
		body["dc"] = st.DC
	}
}

func (r *drillRun) openFault(key, name string, undo func(context.Context) (string, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.open[key] = &openFault{w: Window{Name: name, Start: time.Now()}, undo: undo}
}

func (r *drillRun) closeFault(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o, ok := r.open[key]; ok {
		o.w.End = time.Now()
		r.windows = append(r.windows, o.w)
		delete(r.open, key)
	}
}

// undoFaults undoes every fault still in place: paused components are
// continued first (a stopped process holds up shutdowns), then killed
// sites and components restarted, partitions healed, latency removed.
func (r *drillRun) undoFaults(ctx context.Context) {
	keys := make([]string, 0, len(r.open))
	for key := range r.open {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		return strings.Contains(r.open[keys[i]].w.Name, "pause ") && !strings.Contains(r.open[keys[j]].w.Name, "pause ")
	})
	for _, key := range keys {
		if o := r.open[key]; o.undo != nil {
			if _, err := o.undo(ctx); err != nil {
				r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("undoing %s: %v", key, err))
			}
		}
		r.closeFault(key)
	}
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

// assertMetric checks a metric assertion now and keeps its result for the
// report; a metric that cannot be read is the step's error.
func (r *drillRun) assertMetric(ctx context.Context, a Assertion) (string, error) {
	res, err := r.checkMetric(ctx, a.MetricBound)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.metricAsserts = append(r.metricAsserts, res)
	r.mu.Unlock()
	return fmt.Sprintf("%s = %s (want %s): %s", res.What, res.Got, res.Want, verdict(res.Pass)), nil
}
