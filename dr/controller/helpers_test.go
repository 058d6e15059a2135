package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/controller/controllertest"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

const (
	dcA   = "idc-a"
	dcB   = "idc-b"
	topic = "orders"
	// queues of the ordered topic; with two brokers per DC, broker 0
	// holds queues 0 and 2, broker 1 queues 1 and 3.
	queues = 4
	wait   = 20 * time.Second
)

func testLogger() *slog.Logger {
	if os.Getenv("DUOMQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// env is a 3-member etcd with a seeded metadata prefix, fake brokers and
// liveness records put under one lease per DC.
type env struct {
	t       *testing.T
	etcd    *etcdtest.Cluster
	cli     *clientv3.Client
	store   *meta.Store
	brokers *controllertest.Brokers
	leases  map[string]clientv3.LeaseID
}

// newEnv seeds DCs idc-a and idc-b with two alive brokers each, the
// ordered topic orders (home and primary idc-a, epoch 1) and the
// unordered topic events.
func newEnv(t *testing.T) *env {
	t.Helper()
	c := etcdtest.NewCluster(t, 3)
	return newEnvOn(t, c, c.Client(t))
}

// sharedEnv starts one cluster for the subtests of a test and returns
// newEnv on it: each subtest gets its own key prefix.
func sharedEnv(t *testing.T) func(*testing.T) *env {
	t.Helper()
	c := etcdtest.NewCluster(t, 3)
	cli := c.Client(t)
	return func(st *testing.T) *env { return newEnvOn(st, c, cli) }
}

// newEnvOn seeds a fresh prefix of a running cluster.
func newEnvOn(t *testing.T, c *etcdtest.Cluster, cli *clientv3.Client) *env {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	e := &env{t: t, etcd: c, cli: cli, brokers: controllertest.New(), leases: map[string]clientv3.LeaseID{},
		store: meta.New(cli, meta.Options{Prefix: "/test/" + name + "/", Logger: testLogger()})}
	ctx := e.ctx()
	for _, dc := range []string{dcA, dcB} {
		e.must(e.store.PutDC(ctx, meta.DC{Name: dc}))
	}
	e.must(e.store.CreateTopic(ctx, meta.Topic{Name: topic, Ordered: true, Queues: queues, Primary: dcA, Replication: meta.ReplicationSync}))
	e.must(e.store.CreateTopic(ctx, meta.Topic{Name: "events", Queues: 2}))
	e.alive(dcA, "b0", "b1")
	e.alive(dcB, "b0", "b1")
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *env) must(_ int64, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// addr is the fake address of a broker.
func addr(dc, broker string) string { return broker + "." + dc + ":1" }

// alive puts liveness records of brokers of dc under a new lease of the
// DC (revoked by kill).
func (e *env) alive(dc string, brokers ...string) {
	e.t.Helper()
	l, err := e.cli.Grant(e.ctx(), 60)
	if err != nil {
		e.t.Fatal(err)
	}
	e.leases[dc] = l.ID
	for _, b := range brokers {
		if err := e.store.PutAlive(e.ctx(), l.ID, meta.Alive{Name: b, DC: dc, Address: addr(dc, b), Started: time.Now()}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// kill revokes a DC's lease: its liveness records disappear at once, as
// when its brokers stop or lose the etcd quorum.
func (e *env) kill(dc string) {
	e.t.Helper()
	if _, err := e.cli.Revoke(e.ctx(), e.leases[dc]); err != nil {
		e.t.Fatal(err)
	}
}

// setQueues sets the next offsets of the ordered topic's queues in dc on
// the brokers that hold them.
func (e *env) setQueues(dc string, next ...int64) {
	for q, n := range next {
		e.brokers.SetNext(addr(dc, fmt.Sprintf("b%d", q%2)), topic, q, n)
	}
}

func (e *env) ordered() meta.Ordered {
	e.t.Helper()
	o, _, err := e.store.GetOrdered(e.ctx(), topic)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *env) dcState(dc string) meta.DCState {
	e.t.Helper()
	d, _, err := e.store.GetDC(e.ctx(), dc)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.State
}

// state is controller/state's transitions.
func (e *env) state() []controller.Transition {
	e.t.Helper()
	var doc struct {
		Transitions []controller.Transition `json:"transitions"`
	}
	if _, err := e.store.GetJSON(e.ctx(), meta.KeyControllerState, &doc); err != nil && !strings.Contains(err.Error(), "not found") {
		e.t.Fatal(err)
	}
	return doc.Transitions
}

// audit reads the audit log, oldest first.
func (e *env) audit() []controller.AuditRecord {
	e.t.Helper()
	resp, err := e.cli.Get(e.ctx(), e.store.Key(meta.KeyAudit), clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []controller.AuditRecord
	for _, kv := range resp.Kvs {
		var r controller.AuditRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			e.t.Fatalf("audit %s: %v", kv.Key, err)
		}
		out = append(out, r)
	}
	return out
}

// cand is a running controller candidate.
type cand struct {
	*controller.Controller
	reg *prometheus.Registry
}

func (c cand) counter(name string, labels ...string) float64 {
	mfs, _ := c.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				match = match && found
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// testConfig is fast: failover after 200ms without brokers.
func testConfig(id string) controller.Config {
	cfg := controller.DefaultConfig()
	cfg.ID = id
	cfg.APIURL = "http://" + id + ".invalid:1"
	cfg.ElectionTTL = time.Second
	cfg.DownAfter = 200 * time.Millisecond
	cfg.LeaseTTL = 500 * time.Millisecond
	cfg.CatchUpTimeout = 5 * time.Second
	cfg.FailbackTimeout = 5 * time.Second
	cfg.PollInterval = 5 * time.Millisecond
	cfg.MetaTimeout = 2 * time.Second
	return cfg
}

// start runs a candidate until the test ends (or it is closed).
func (e *env) start(cfg controller.Config, hooks controller.Hooks) cand {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	c, err := controller.New(cfg, controller.Deps{Store: e.store, Brokers: e.brokers, Logger: testLogger(), Registerer: reg, Hooks: hooks})
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	e.t.Cleanup(func() {
		c.Close()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(wait):
		e.t.Fatalf("controller %s not ready after %v", cfg.ID, wait)
	}
	return cand{c, reg}
}

// leader waits until c leads.
func (e *env) leader(c cand) {
	e.t.Helper()
	etcdtest.Eventually(e.t, wait, c.IsLeader, "%s does not lead", c.ID())
}

var noHooks controller.Hooks

// lastAudit returns the newest audit record of a kind.
func (e *env) lastAudit(kind string) (controller.AuditRecord, bool) {
	e.t.Helper()
	recs := e.audit()
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Kind == kind {
			return recs[i], true
		}
	}
	return controller.AuditRecord{}, false
}

func decodeOrdered(t *testing.T, raw json.RawMessage) meta.Ordered {
	t.Helper()
	var o meta.Ordered
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("ordered record %s: %v", raw, err)
	}
	return o
}
