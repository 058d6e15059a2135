package deploytest

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const (
	promConfig = "prometheus/prometheus.yml"
	alertRules = "prometheus/alerts.yml"
	dashboard  = "grafana/duomq-overview.json"
)

// deployDir is deploy/, the parent of this package's directory.
func deployDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir := deployDir(t)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above deploy/")
		}
		dir = parent
	}
}

func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found (scripts/setup.sh installs it)")
		}
		t.Log("NOT RUN: promtool (scripts/setup.sh installs it)")
		return ""
	}
	return path
}

func TestPromtoolCheckConfig(t *testing.T) {
	bin := promtool(t)
	if bin == "" {
		return
	}
	cmd := exec.Command(bin, "check", "config", filepath.Base(promConfig))
	cmd.Dir = filepath.Join(deployDir(t), filepath.Dir(promConfig)) // rule_files are relative to it
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check config %s: %v\n%s", promConfig, err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	bin := promtool(t)
	if bin == "" {
		return
	}
	cmd := exec.Command(bin, "check", "rules", filepath.Join(deployDir(t), alertRules))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertRules, err, out)
	}
}

// TestAlertsAnnotated checks, without a YAML parser, that every alert has a
// for:, a severity label and summary and description annotations (each
// alert's block runs from its "- alert:" line to the next).
func TestAlertsAnnotated(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir(t), alertRules))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "- alert:")[1:]
	if len(blocks) == 0 {
		t.Fatal("no alerts in " + alertRules)
	}
	severity := regexp.MustCompile(`(?m)^\s+severity:\s*(critical|warning|info)\s*$`)
	for _, blk := range blocks {
		name := strings.TrimSpace(strings.SplitN(blk, "\n", 2)[0])
		for _, key := range []string{"expr:", "for:", "summary:", "description:"} {
			if !regexp.MustCompile(`(?m)^\s+` + key).MatchString(blk) {
				t.Errorf("alert %s: no %s", name, key)
			}
		}
		if !severity.MatchString(blk) {
			t.Errorf("alert %s: no severity label (critical, warning or info)", name)
		}
	}
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's collapsed panels
}

func TestDashboardPanelsHaveQueries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir(t), dashboard))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name string `json:"name"`
		} `json:"__inputs"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, want := range []string{"DS_PROMETHEUS", "dc"} {
		if !vars[want] {
			t.Errorf("%s: no template variable %q", dashboard, want)
		}
	}
	if len(d.Inputs) == 0 || d.Inputs[0].Name != "DS_PROMETHEUS" {
		t.Errorf("%s: __inputs should declare DS_PROMETHEUS", dashboard)
	}
	n := 0
	var check func([]panel)
	check = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" { // rows only group panels
				check(p.Panels)
				continue
			}
			n++
			ok := false
			for _, tg := range p.Targets {
				ok = ok || strings.TrimSpace(tg.Expr) != ""
			}
			if !ok {
				t.Errorf("%s: panel %d %q has no target with an expr", dashboard, p.ID, p.Title)
			}
		}
	}
	check(d.Panels)
	if n == 0 {
		t.Fatalf("%s: no panels", dashboard)
	}
}

// definedMetrics returns the quoted "duomq_..." strings of the repository's
// non-test Go files: the metric names the code can export.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	quoted := regexp.MustCompile(`"(duomq_[a-z0-9_]+)"`)
	names := map[string]bool{}
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata" || e.Name() == "vendor" || e.Name() == "data") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMetricNamesExist(t *testing.T) {
	defined := definedMetrics(t)
	if len(defined) == 0 {
		t.Fatal("no duomq_ metric names found in the Go sources")
	}
	used := regexp.MustCompile(`duomq_[a-z_]+`)
	for _, file := range []string{promConfig, alertRules, dashboard} {
		b, err := os.ReadFile(filepath.Join(deployDir(t), file))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, name := range used.FindAllString(string(b), -1) {
			seen[name] = true
		}
		if file != promConfig && len(seen) == 0 {
			t.Errorf("%s uses no duomq_ metric", file)
		}
		var missing []string
		for name := range seen {
			if !defined[metricName(name, defined)] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		for _, name := range missing {
			t.Errorf("%s uses %s, which no non-test Go file defines", file, name)
		}
	}
}

// metricName maps a histogram's series name (_bucket, _sum, _count) to the
// metric's name when the series name itself is not defined.
func metricName(name string, defined map[string]bool) string {
	if defined[name] {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			return base
		}
	}
	return name
}

func TestMetricNameSuffixes(t *testing.T) {
	defined := map[string]bool{"duomq_x_seconds": true, "duomq_y_count": true}
	for in, want := range map[string]string{
		"duomq_x_seconds_bucket": "duomq_x_seconds",
		"duomq_x_seconds_count":  "duomq_x_seconds",
		"duomq_y_count":          "duomq_y_count",
		"duomq_z_total":          "duomq_z_total",
	} {
		if got := metricName(in, defined); got != want {
			t.Errorf("metricName(%q) = %q, want %q", in, got, want)
		}
	}
}
