package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/controller/controllertest"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/etcdtest"
)

const testToken = "cli-test-token"

// controllerSite is a metadata service with two DCs of two alive brokers
// each (fake brokers), an ordered topic at home in idc-a, and a leading
// controller whose API serves on srv.
type controllerSite struct {
	store *meta.Store
	srv   *httptest.Server
	file  string
}

func newControllerSite(t *testing.T) *controllerSite {
	t.Helper()
	ec := etcdtest.NewCluster(t, 3)
	cli := ec.Client(t)
	store := meta.New(cli, meta.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	brokers := controllertest.New()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	for _, dc := range []string{"idc-a", "idc-b"} {
		if _, err := store.PutDC(ctx, meta.DC{Name: dc}); err != nil {
			t.Fatal(err)
		}
		for i, b := range []string{"b0", "b1"} {
			addr := b + "." + dc
			if err := store.PutAlive(ctx, lease.ID, meta.Alive{Name: b, DC: dc, Address: addr}); err != nil {
				t.Fatal(err)
			}
			for q := i; q < 4; q += 2 {
				brokers.SetNext(addr, "orders", q, int64(10*(q+1)))
			}
		}
	}
	if _, err := store.CreateTopic(ctx, meta.Topic{Name: "orders", Ordered: true, Queues: 4, Primary: "idc-a"}); err != nil {
		t.Fatal(err)
	}
	cfg := controller.DefaultConfig()
	cfg.ID, cfg.ElectionTTL, cfg.PollInterval = "cli-test", time.Second, 5*time.Millisecond
	c, err := controller.New(cfg, controller.Deps{Store: store, Brokers: brokers, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	t.Cleanup(func() { c.Close(); <-done })
	etcdtest.Eventually(t, 20*time.Second, c.IsLeader, "the controller does not lead")
	api, err := controller.NewAPI(c, testToken)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "cluster.json")
	eps := ec.Endpoints()
	if err := clusterfile.Write(file, clusterfile.File{ControllerAPI: srv.URL, Sites: map[string]clusterfile.Site{
		"idc-a": {Etcd: eps[0]}, "idc-b": {Etcd: eps[1]}, "witness": {Etcd: eps[2]},
	}}); err != nil {
		t.Fatal(err)
	}
	return &controllerSite{store: store, srv: srv, file: file}
}

func (s *controllerSite) ordered(t *testing.T) meta.Ordered {
	t.Helper()
	o, _, err := s.store.GetOrdered(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (s *controllerSite) traffic(t *testing.T) meta.Traffic {
	t.Helper()
	tr, _, err := s.store.GetTraffic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTrafficAndSwitchCommandsAgainstTheController(t *testing.T) {
	s := newControllerSite(t)
	t.Setenv(tokenEnv, testToken)
	t.Setenv("DUOMQ_CLUSTER", s.file)

	out, err := cli(t, "", "traffic", "show", "--controller", s.srv.URL, "--token", testToken)
	if err != nil || !strings.Contains(out, "idc-a") || !strings.Contains(out, "active") {
		t.Fatalf("traffic show: %v\n%s", err, out)
	}
	if out, err := cli(t, "", "traffic", "weights", "idc-a=70,idc-b=30", "--reason", "test"); err != nil {
		t.Fatalf("traffic weights: %v\n%s", err, out)
	}
	if w := s.traffic(t).Weights; !reflect.DeepEqual(w, map[string]int{"idc-a": 70, "idc-b": 30}) {
		t.Fatalf("weights %v", w)
	}
	if out, err := cli(t, "", "traffic", "block", "idc-b"); err != nil {
		t.Fatalf("traffic block: %v\n%s", err, out)
	}
	if b := s.traffic(t).BlockedDCs; len(b) != 1 || b[0] != "idc-b" {
		t.Fatalf("blocked %v", b)
	}
	if out, err := cli(t, "", "traffic", "unblock", "idc-b"); err != nil || len(s.traffic(t).BlockedDCs) != 0 {
		t.Fatalf("traffic unblock: %v\n%s", err, out)
	}

	out, err = cli(t, "", "switchover", "--topic", "orders", "--to", "idc-b", "-o", "json")
	var rep controller.APIReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Transitions) != 1 || rep.Transitions[0].Outcome.Outcome != "ok" {
		t.Fatalf("switchover: %v\n%s", err, out)
	}
	if o := s.ordered(t); o.Primary != "idc-b" || o.Epoch != 3 || o.Blocked {
		t.Fatalf("record after switchover %+v", o)
	}
	out, err = cli(t, "", "status", "-o", "json")
	var st controller.Status
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Ordered) != 1 || st.Ordered[0].Primary != "idc-b" {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	out, err = cli(t, "", "status")
	if err != nil || !strings.Contains(out, "LEADER") || !regexpLine(out, `orders\s+idc-b\s+idc-a\s+3\s+no`) {
		t.Fatalf("status: %v\n%s", err, out)
	}

	_, err = cli(t, "", "failover", "--topic", "orders", "--to", "idc-a")
	if err == nil || !strings.Contains(err.Error(), "HTTP 409, PRIMARY_ALIVE") || !strings.Contains(err.Error(), "idc-b has 2 alive brokers") {
		t.Fatalf("failover of a live primary: %v", err)
	}
	out, err = cli(t, "", "failback", "--topic", "orders")
	if err != nil || !regexpLine(out, `orders\s+failback\s+idc-b\s+idc-a\s+ok\s+3->5`) {
		t.Fatalf("failback: %v\n%s", err, out)
	}
	out, err = cli(t, "", "traffic", "switch", "idc-b")
	if err != nil || !strings.Contains(out, "weights idc-a=0,idc-b=100") || !regexpLine(out, `orders\s+switchover\s+idc-a\s+idc-b\s+ok\s+5->7`) {
		t.Fatalf("traffic switch: %v\n%s", err, out)
	}
	if w := s.traffic(t).Weights; w["idc-b"] != 100 || w["idc-a"] != 0 {
		t.Fatalf("weights after the switch %v", w)
	}
}

func TestTrafficCommandErrors(t *testing.T) {
	s := newControllerSite(t)
	t.Setenv("DUOMQ_CLUSTER", s.file)
	before := s.ordered(t)
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"no token", "", []string{"traffic", "show"}, "no controller token: use --token or set $DUOMQ_CONTROLLER_TOKEN"},
		{"wrong token", "", []string{"status", "--token", "nope"}, "HTTP 401, UNAUTHENTICATED"},
		{"unknown topic", testToken, []string{"switchover", "--topic", "nope", "--to", "idc-b"}, `topic "nope" does not exist (HTTP 404, UNKNOWN_TOPIC)`},
		{"unknown dc", testToken, []string{"traffic", "block", "idc-z"}, "HTTP 404, UNKNOWN_DC"},
		{"already primary", testToken, []string{"switchover", "--dc", "idc-a", "--to", "idc-a"}, "HTTP 409, ALREADY_PRIMARY"},
		{"no target", testToken, []string{"switchover", "--topic", "orders"}, `required flag(s) "to" not set`},
		{"topic and dc", testToken, []string{"failback", "--topic", "orders", "--dc", "idc-a"}, "none of the others can be"},
		{"neither", testToken, []string{"failback"}, "at least one of the flags in the group [topic dc] is required"},
		{"bad weights", testToken, []string{"traffic", "weights", "idc-a"}, "use DC=WEIGHT"},
		{"zero weights", testToken, []string{"traffic", "weights", "idc-a=0"}, "HTTP 400, INVALID_ARGUMENT"},
		{"no controller", testToken, []string{"status", "--cluster", filepath.Join(t.TempDir(), "none.json")}, "no controller API"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tokenEnv, tt.env)
			_, err := cli(t, "", tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("duomq %s: %v, want %q", strings.Join(tt.args, " "), err, tt.want)
			}
		})
	}
	if got := s.ordered(t); got != before {
		t.Fatalf("refused commands changed the record: %+v -> %+v", before, got)
	}
}

// `duomq status` prints a line per replica set of more than one broker,
// none for brokers alone in their sets (the DC line lists them).
func TestStatusPrintsReplicaSets(t *testing.T) {
	alone := controller.ReplicaSetStatus{Set: "broker-b-0", Leader: "broker-b-0", LeaderLive: true, Standbys: []controller.StandbyStatus{}}
	st := controller.Status{DCs: []controller.DCStatus{
		{Name: "idc-a", State: meta.DCActive, ReplicaSets: []controller.ReplicaSetStatus{
			{Set: "set-0", Leader: "broker-a-1", LeaderLive: true, Term: 2, Standbys: []controller.StandbyStatus{{Name: "broker-a-0", Live: true}}},
			{Set: "set-1", Leader: "broker-a-2", Standbys: []controller.StandbyStatus{{Name: "broker-a-3", Live: true}}},
		}},
		{Name: "idc-b", State: meta.DCActive, ReplicaSets: []controller.ReplicaSetStatus{alone}},
	}}
	var out strings.Builder
	if err := printStatus(&out, st); err != nil {
		t.Fatal(err)
	}
	if !regexpLine(out.String(), `REPLICA-SET\s+DC\s+LEADER\s+STATE\s+TERM\s+STANDBYS`) ||
		!regexpLine(out.String(), `set-0\s+idc-a\s+broker-a-1\s+live\s+2\s+broker-a-0\(live,out-of-sync\)`) ||
		!regexpLine(out.String(), `set-1\s+idc-a\s+broker-a-2\s+no-leader\s+-\s+broker-a-3\(live,out-of-sync\)`) ||
		strings.Contains(out.String(), "broker-b-0") {
		t.Fatalf("status:\n%s", out.String())
	}
	st.DCs = st.DCs[1:]
	out.Reset()
	if err := printStatus(&out, st); err != nil || strings.Contains(out.String(), "REPLICA-SET") {
		t.Fatalf("status without a replica set of several brokers: %v\n%s", err, out.String())
	}
}

// regexpLine reports whether some line of out matches re.
func regexpLine(out, re string) bool {
	return regexp.MustCompile(`(?m)^` + re).MatchString(out)
}

// TestControllerCommandServes runs `duomq controller` against a real
// metadata service and asks it for its status through the CLI.
func TestControllerCommandServes(t *testing.T) {
	ec := etcdtest.NewCluster(t, 3)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready.json")
	cfg := writeConfig(t, "controller.yaml", "listen: 127.0.0.1:0\nmetrics-listen: 127.0.0.1:0\ntoken: "+testToken+
		"\netcd-endpoints: ["+strings.Join(ec.Endpoints(), ", ")+"]\ncontroller:\n  id: cmd-test\n  election-ttl: 1s\n")
	if out, err := runConfigValidate(t, cfg); err != nil || !strings.HasSuffix(out, ": ok (controller)\n") {
		t.Fatalf("config validate: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRootCommand()
		root.SetArgs([]string{"controller", "--config", cfg, "--ready-file", ready})
		root.SetOut(new(strings.Builder))
		done <- root.ExecuteContext(ctx)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("duomq controller: %v", err)
		}
	}()
	var ep daemon.Endpoints
	etcdtest.Eventually(t, 20*time.Second, func() bool {
		b, err := os.ReadFile(ready)
		return err == nil && json.Unmarshal(b, &ep) == nil && ep.HTTP != ""
	}, "duomq controller wrote no ready file")
	var st controller.Status
	etcdtest.Eventually(t, 20*time.Second, func() bool {
		out, err := cli(t, "", "status", "-o", "json", "--controller", ep.HTTP, "--token", testToken)
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Leader != nil
	}, "the controller did not report itself as leader")
	if st.Leader.ID != "cmd-test" || st.Leader.APIURL != ep.HTTP || len(st.Etcd) != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestControllerConfigValidateAndDocs(t *testing.T) {
	bad := writeConfig(t, "c.yaml", "controller:\n  down-after: 0s\n  auto-failovr: true\nlog: {level: loud}\n")
	out, err := runConfigValidate(t, bad)
	if err == nil {
		t.Fatalf("validated:\n%s", out)
	}
	for _, w := range []string{"kind controller (inferred", "controller.auto-failovr: unknown key", "controller: controller: token", `log: log level "loud"`} {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in\n%s", w, out)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## `duomq controller`\n")
	section, _, _ = strings.Cut(section, "\n## ")
	if !ok {
		t.Fatal("docs/configuration.md has no section `duomq controller`")
	}
	for _, k := range leafKeys("", reflect.TypeOf(daemon.ControllerProcess{})) {
		if !strings.Contains(section, "`"+k+"`") {
			t.Errorf("docs/configuration.md, section `duomq controller`, does not document %s", k)
		}
	}
}
