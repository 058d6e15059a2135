package drills

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/devcluster"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

func TestParseRefusesBadScenarios(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "name: x\nsteps: [{action: wait, for: 1s}]\nstepz: []\n", "additional properties 'stepz' not allowed"},
		{"no steps", "name: x\ntopology: {local: {}}\n", "missing property 'steps'"},
		{"empty steps", "name: x\nsteps: []\n", "minItems"},
		{"unknown action", "name: x\nsteps: [{action: explode}]\n", "value must be one of"},
		{"wait without duration", "name: x\nsteps: [{action: wait}]\n", "for: a positive duration"},
		{"switchover without target", "name: x\nsteps: [{action: switchover, to: idc-b}]\n", "topic or dc"},
		{"producer of an unknown topic", "name: x\nworkload: {producers: [{dc: idc-a, topic: nope, rate: 1}]}\nsteps: [{action: wait, for: 1s}]\n", `topic "nope" is not in workload.topics`},
		{"ordered topic without primary", "name: x\nworkload: {topics: [{name: o, ordered: true}]}\nsteps: [{action: wait, for: 1s}]\n", "needs primary"},
		{"bad duration", "name: x\nsteps: [{action: wait, for: soon}]\n", "does not match pattern"},
		{"bad name", "name: x\nworkload: {topics: [{name: 'a b'}]}\nsteps: [{action: wait, for: 1s}]\n", "/workload/topics/0/name"},
		{"wait for nothing", "name: x\nsteps: [{action: wait, until: {}}]\n", "minProperties"},
		{"dc_down without dc", "name: x\nsteps: [{action: wait, until: {dc_down: true}}]\n", "dc goes with dc_down"},
		{"component without site", "name: x\nsteps: [{action: kill-component, component: controller}]\n", "site (or leader) and component"},
		{"latency to itself", "name: x\nsteps: [{action: wan-latency, site: idc-a, to: idc-a, delay: 2ms}]\n", "two different sites"},
		{"bad transition", "name: x\nsteps: [{action: wait, until: {transition: soon}}]\n", "value must be one of"},
		{"assert bound of the wrong type", "name: x\nsteps: [{action: assert, assert: {max_lost: many}}]\n", "/steps/0/assert/max_lost"},
		{"assert on nothing", "name: x\nsteps: [{action: assert, assert: {}}]\n", "assert: no bound"},
		{"metric without bound", "name: x\nsteps: [{action: assert, assert: {metric: duomq_broker_sync_followers}}]\n", "needs metric and min or max"},
		{"metric and figures", "name: x\nsteps: [{action: assert, assert: {metric: up, min: 1, max_lost: 0}}]\n", "not both in one step"},
		{"bad metric name", "name: x\nsteps: [{action: assert, assert: {metric: 'a-b', min: 1}}]\n", "/steps/0/assert/metric"},
		{"bad aggregate", "name: x\nsteps: [{action: assert, assert: {metric: up, aggregate: avg, min: 1}}]\n", "/steps/0/assert/aggregate"},
		{"wait on a metric without bound", "name: x\nsteps: [{action: wait, until: {metric: up, site: idc-a}}]\n", "until: a metric bound needs metric and min or max"},
		{"component and replica set", "name: x\nsteps: [{action: kill-component, site: idc-a, component: core, replica_set: set-a-0}]\n", "component or replica_set, not both"},
		{"replica set of the leader's site", "name: x\nsteps: [{action: kill-component, site: leader, replica_set: set-a-0}]\n", "the DC of the replica set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestShippedScenariosParse(t *testing.T) {
	files, _ := filepath.Glob("scenarios/*.yaml")
	if len(files) == 0 {
		t.Fatal("no shipped scenario")
	}
	// Each is run by a test of this file too (docs/drills.md: "each run
	// by the tests").
	src, err := os.ReadFile("drills_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !bytes.Contains(src, []byte(`"`+filepath.Base(f)+`"`)) {
			t.Errorf("%s (%s) is run by no test", f, s.Name)
		}
	}
}

// buildDuomq builds the binary the local topology's sites run.
func buildDuomq(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "duomq")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/duomq/duomq/cmd/duomq").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// runShipped runs a shipped scenario on the local topology in dir, after
// edit (which may loosen a bound for a loaded test machine, saying so),
// and returns its report.
func runShipped(t *testing.T, file, dir string, edit func(*Scenario)) *Report {
	t.Helper()
	s, err := Load(filepath.Join("scenarios", file))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, s, Options{Dir: dir, Binary: buildDuomq(t), Out: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.PrintSummary(&buf)
	t.Log("\n" + buf.String())
	if len(rep.Steps) != len(s.Steps) || len(rep.Assertions) == 0 {
		t.Fatalf("%d of %d steps ran, %d assertions", len(rep.Steps), len(s.Steps), len(rep.Assertions))
	}
	return rep
}

func figuresOf(t *testing.T, rep *Report, c Class) Figures {
	t.Helper()
	for _, f := range rep.Figures {
		if f.Class == c {
			return f
		}
	}
	t.Fatalf("no figures of class %s", c)
	return Figures{}
}

// TestPlannedSwitchoverDrill runs the shipped drill 1 end to end on the
// local topology (site processes of a freshly built duomq binary).
func TestPlannedSwitchoverDrill(t *testing.T) {
	rep := runShipped(t, "01-planned-switchover.yaml", t.TempDir(), nil)
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(path)
	if err != nil || back.Scenario != rep.Scenario || len(back.Figures) != len(rep.Figures) {
		t.Fatalf("report round trip: %v %+v", err, back)
	}
}

// TestPrimaryDCLostDrill runs drill 2: SIGKILL of the primary site under
// ordered sync load. The shipped bound on the send RTO (3 s, the target)
// is loosened to 10 s here, where the whole test suite shares two cores;
// the measured value is in the log and docs/benchmarks.md.
func TestPrimaryDCLostDrill(t *testing.T) {
	rep := runShipped(t, "02-primary-dc-lost.yaml", t.TempDir(), func(s *Scenario) {
		for i := range s.Steps {
			if a := s.Steps[i].Assert; a != nil && a.MaxSendRTO != nil {
				d := Duration(10 * time.Second)
				a.MaxSendRTO = &d
			}
		}
	})
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	if len(rep.Faults) != 1 || len(rep.RTO) == 0 {
		t.Fatalf("fault windows %+v, RTOs %+v", rep.Faults, rep.RTO)
	}
}

// TestFailbackWithDivergenceDrillReportsTheLoss runs drill 5, which plants
// a loss the system cannot prevent: with async replication, the primary
// acks writes the other DC never receives, then dies. The checker must
// report that loss, and the returning old primary must quarantine the
// tail instead of serving it.
func TestFailbackWithDivergenceDrillReportsTheLoss(t *testing.T) {
	if why := devcluster.NetnsAvailable(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("drill 5 needs network namespaces: %s", why)
		}
		t.Skipf("NOT RUN: drill 5 needs network namespaces: %s", why)
	}
	dir := t.TempDir()
	rep := runShipped(t, "05-failback-with-divergence.yaml", dir, nil)
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	if f := figuresOf(t, rep, OrderedAsync); f.Lost == 0 || f.Reordered != 0 {
		t.Fatalf("figures %+v: want the planted loss reported, nothing reordered", f)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "idc-a", "broker-a-*", "quarantine", "ledger-*.jsonl"))
	if len(files) == 0 {
		t.Fatal("the old primary's unreplicated tail was not quarantined")
	}
}

// TestAsymmetricPartitionDrill runs drill 3: the primary DC cut off from
// the other DC and the witness; nothing acked lost, nothing reordered.
func TestAsymmetricPartitionDrill(t *testing.T) {
	if why := devcluster.NetnsAvailable(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("drill 3 needs network namespaces: %s", why)
		}
		t.Skipf("NOT RUN: drill 3 needs network namespaces: %s", why)
	}
	rep := runShipped(t, "03-asymmetric-partition.yaml", t.TempDir(), nil)
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
}

// TestFlappingDCDrill runs drill 4: the primary DC down, up, down.
func TestFlappingDCDrill(t *testing.T) {
	rep := runShipped(t, "04-flapping-dc.yaml", t.TempDir(), nil)
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	if len(rep.Faults) != 2 {
		t.Fatalf("fault windows %+v: want the two losses", rep.Faults)
	}
}

// TestControllerLeaderLostDrill runs drill 6: the controller leader is
// SIGKILLed while it fails the primary DC's topic over; the next leader
// must complete the failover (the topic is writable again in idc-b) with
// nothing acked lost or reordered.
func TestControllerLeaderLostDrill(t *testing.T) {
	dir := t.TempDir()
	rep := runShipped(t, "06-controller-leader-lost.yaml", dir, nil)
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	var killed, done *StepResult
	for i := range rep.Steps {
		st := &rep.Steps[i]
		switch {
		case st.Action == "kill-component":
			killed = st
		case st.Until != nil && st.Until.Transition == "none":
			done = st
		}
	}
	if killed == nil || !strings.Contains(killed.Detail, "SIGKILL controller") || done == nil || done.Error != "" {
		t.Fatalf("kill step %+v, transition-done step %+v", killed, done)
	}
	// The failover was in progress when its leader died, and another
	// candidate finished it: the audit log holds its completion by a
	// controller other than the one killed.
	t.Logf("failover completed %v after its leader was killed (%s)", done.End.Sub(killed.End).Round(time.Millisecond), killed.Detail)
}

// TestWANLatencyDrill runs drill 7: 2 ms added to the round trip between
// the DCs. Sync replication pays it on every send, async does not. What
// the test checks is that the drill applies and removes the latency and
// scores both classes in both phases; how much the latency costs is a
// figure the drill reports (docs/benchmarks.md), not a bound: under the
// race detector with the suite sharing two cores a send's p50 is ~16 ms
// and 2 ms more is within its noise. The relay's delay itself is checked
// by TestPumpDelaysInOrder (devcluster).
func TestWANLatencyDrill(t *testing.T) {
	rep := runShipped(t, "07-wan-latency.yaml", t.TempDir(), nil)
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	phase := func(name string, c Class) Phase {
		t.Helper()
		for _, p := range rep.Phases {
			if strings.HasPrefix(p.Phase, name) && p.Class == c {
				return p
			}
		}
		t.Fatalf("no phase %s of %s in %+v", name, c, rep.Phases)
		return Phase{}
	}
	for _, c := range []Class{OrderedSync, OrderedAsync} {
		base, slow := phase(baselinePhase, c), phase("wan ", c)
		if base.Acked == 0 || slow.Acked == 0 {
			t.Fatalf("%s: %d sends acked outside the latency, %d inside", c, base.Acked, slow.Acked)
		}
		t.Logf("%s send p50 %.2fms without, %.2fms with +2ms", c, base.P50ms, slow.P50ms)
	}
	var set, removed bool
	for _, st := range rep.Steps {
		if st.Step.Action == "wan-latency" && st.Error == "" {
			set = set || strings.Contains(st.Detail, "+2ms")
			removed = removed || strings.Contains(st.Detail, "+0s")
		}
	}
	if !set || !removed {
		t.Fatalf("the latency was not both applied and removed: %+v", rep.Steps)
	}
}

// TestBrokerLostDrill runs drill 8: SIGKILL of the broker that leads a
// replica set of the primary DC, under ordered sync load. Its standby
// must take over inside idc-a (the scenario's metric assertions: one
// promotion, the topic's epoch raised once, idc-a still the primary,
// the old leader back in sync after its restart), and ordered writes
// must go on while the killed broker is still down. The shipped bound on
// the send RTO (3 s: lease TTL, keeper tick, client retry) is loosened
// to 5 s here, where the race detector and other packages' tests share
// two cores; that still fails a set whose writes wait for the killed
// broker's return. The measured value is in the log and
// docs/benchmarks.md.
func TestBrokerLostDrill(t *testing.T) {
	rep := runShipped(t, "08-broker-lost.yaml", t.TempDir(), func(s *Scenario) {
		for i := range s.Steps {
			if a := s.Steps[i].Assert; a != nil && a.MaxSendRTO != nil {
				d := Duration(5 * time.Second)
				a.MaxSendRTO = &d
			}
		}
	})
	if !rep.Pass {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	if len(rep.Faults) != 1 || !strings.HasPrefix(rep.Faults[0].Name, "kill broker-a-") {
		t.Fatalf("fault windows %+v: want the one broker's loss", rep.Faults)
	}
	fault := rep.Faults[0].Name
	var kill, restart *StepResult
	for i := range rep.Steps {
		switch st := &rep.Steps[i]; st.Action {
		case "kill-component":
			kill = st
		case "restart-component":
			restart = st
		}
	}
	// The restart acts on the broker the kill did, whichever led the set.
	killed := strings.TrimSuffix(strings.TrimPrefix(fault, "kill "), " of idc-a")
	if kill == nil || !strings.Contains(kill.Detail, "SIGKILL "+killed+" of idc-a") || restart == nil || restart.Error != "" {
		t.Fatalf("kill step %+v, restart step %+v", kill, restart)
	}
	send := -1.0
	for _, x := range rep.RTO {
		if x.Fault == fault && x.Class == OrderedSync {
			send = x.SendSeconds
		}
	}
	if send < 0 {
		t.Fatalf("no ordered-sync RTO for %s in %+v", fault, rep.RTO)
	}
	// The killed broker stays down for the whole window: ordered sends
	// acked in it were taken by the promoted standby (and copied to
	// idc-b), not by the old leader back.
	acked := -1
	for _, p := range rep.Phases {
		if p.Phase == fault && p.Class == OrderedSync {
			acked = p.Acked
		}
	}
	if acked < 20 {
		t.Fatalf("%d ordered sync sends acked while %s was down: want writes to go on after the promotion", acked, killed)
	}
	t.Logf("ordered sync send RTO after the loss of %s: %.2fs (lease TTL 2s); %d ordered sends acked while it was down", killed, send, acked)
}

func TestHistoryStoresReports(t *testing.T) {
	c := etcdtest.NewCluster(t, 3)
	store := meta.New(c.Client(t), meta.Options{Prefix: "/test/drills/"})
	ctx := context.Background()
	older := &Report{Version: ReportVersion, Scenario: "planned switchover", Started: t0, Ended: t0.Add(time.Minute), Pass: true}
	newer := &Report{Version: ReportVersion, Scenario: "primary-dc-lost", Started: t0.Add(time.Hour), Ended: t0.Add(time.Hour + time.Minute),
		Figures: []Figures{{Class: OrderedSync, Attempted: 3, Acked: 3, Lost: 1}}}
	for _, r := range []*Report{older, newer} {
		if err := Save(ctx, store, r); err != nil {
			t.Fatal(err)
		}
	}
	reps, err := History(ctx, store)
	if err != nil || len(reps) != 2 || reps[0].Scenario != "primary-dc-lost" || reps[1].Scenario != "planned switchover" {
		t.Fatalf("history %v, %v: want both, newest first", reps, err)
	}
	got, err := Get(ctx, store, newer.ID())
	if err != nil || len(got.Figures) != 1 || got.Figures[0].Lost != 1 || got.Pass {
		t.Fatalf("get %s: %+v, %v", newer.ID(), got, err)
	}
	if strings.ContainsAny(older.ID(), " /") {
		t.Fatalf("id %q has characters a key segment cannot", older.ID())
	}
}
