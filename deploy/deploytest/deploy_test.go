package deploytest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	promConfig = "prometheus/prometheus.yml"
	alertRules = "prometheus/alerts.yml"
	dashboards = "grafana/*.json"
	// operations is the runbook whose alert section lists every alert.
	operations = "docs/operations.md"
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

// rule is one alerting rule of alerts.yml.
type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir(t), alertRules))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", alertRules, err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no rules in " + alertRules)
	}
	return out
}

// TestAlertsAnnotated checks that every rule is a named alert with a for:,
// a severity label and summary and description annotations (the runbook
// text: what it means and what to check first).
func TestAlertsAnnotated(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			t.Errorf("rule %q is not an alert", r.Expr)
			continue
		}
		if seen[r.Alert] {
			t.Errorf("alert %s defined twice", r.Alert)
		}
		seen[r.Alert] = true
		if strings.TrimSpace(r.Expr) == "" || r.For == "" {
			t.Errorf("alert %s: no expr or for", r.Alert)
		}
		if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
			t.Errorf("alert %s: no severity label (critical, warning or info)", r.Alert)
		}
		for _, key := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[key]) == "" {
				t.Errorf("alert %s: no %s annotation", r.Alert, key)
			}
		}
	}
}

// TestAlertsDocumented checks that the alert section of the operations
// runbook and the rules name the same alerts.
func TestAlertsDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), operations))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Alerts")
	if !ok {
		t.Fatalf("%s has no \"## Alerts\" section", operations)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\|\s*(Duomq[A-Za-z0-9]+)\s*\|`).FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	defined := map[string]bool{}
	for _, r := range loadRules(t) {
		defined[r.Alert] = true
		if !documented[r.Alert] {
			t.Errorf("alert %s is not in the table of %s's alert section", r.Alert, operations)
		}
	}
	for name := range documented {
		if !defined[name] {
			t.Errorf("%s lists alert %s, which %s does not define", operations, name, alertRules)
		}
	}
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's collapsed panels
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboard struct {
	file          string
	Inputs        []json.RawMessage `json:"__inputs"`
	UID           string            `json:"uid"`
	Title         string            `json:"title"`
	SchemaVersion int               `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

// queries returns every panel (rows' collapsed panels included) that is
// not a row.
func (d dashboard) queries() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" { // rows only group panels
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// loadDashboards reads every dashboard of deploy/grafana.
func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir(t), dashboards))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboards match %s", dashboards)
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := dashboard{file: "grafana/" + filepath.Base(f)}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", d.file, err)
		}
		out = append(out, d)
	}
	return out
}

// The data source every query uses: the dashboard's own variable, so a
// dashboard works as provisioned from a file and as imported.
const dsUID = "${datasource}"

func TestDashboards(t *testing.T) {
	ds := loadDashboards(t)
	uids := map[string]string{}
	for _, d := range ds {
		t.Run(d.file, func(t *testing.T) {
			checkDashboard(t, d)
		})
		if other, ok := uids[d.UID]; ok || d.UID == "" {
			t.Errorf("%s: uid %q is empty or also %s's", d.file, d.UID, other)
		}
		uids[d.UID] = d.file
		if d.SchemaVersion != ds[0].SchemaVersion {
			t.Errorf("%s: schemaVersion %d, %s has %d: keep them the same", d.file, d.SchemaVersion, ds[0].file, ds[0].SchemaVersion)
		}
	}
}

func checkDashboard(t *testing.T, d dashboard) {
	if d.Title == "" {
		t.Error("no title")
	}
	if len(d.Inputs) != 0 {
		t.Error("__inputs declared: use the datasource variable instead")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Datasource != nil && v.Datasource.UID != dsUID {
			t.Errorf("variable %s uses data source %q, want %q", v.Name, v.Datasource.UID, dsUID)
		}
	}
	if vars["datasource"] != "datasource" {
		t.Error(`no data source variable "datasource"`)
	}
	if vars["dc"] != "query" {
		t.Error(`no query variable "dc"`)
	}
	ids := map[int]bool{}
	ps := d.queries()
	if len(ps) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range ps {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d is 0 or not unique", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != dsUID {
			t.Errorf("panel %q: data source %q, want %q", p.Title, p.Datasource.UID, dsUID)
		}
		n := 0
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) != "" {
				n++
			}
			if tg.Datasource.UID != dsUID {
				t.Errorf("panel %q: a target's data source is %q, want %q", p.Title, tg.Datasource.UID, dsUID)
			}
		}
		if n == 0 || n != len(p.Targets) {
			t.Errorf("panel %q: %d of %d targets have an expr", p.Title, n, len(p.Targets))
		}
	}
}

// grafanaVars are the built-in variables the dashboards' queries use, with
// a value promtool accepts; a dashboard variable ($dc) becomes a label value.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

var dashboardVar = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// TestDashboardQueriesParse has promtool parse every dashboard query, as a
// recording rule of a throw-away rule file.
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	if bin == "" {
		return
	}
	type recording struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []recording
	var where []string
	for _, d := range loadDashboards(t) {
		for _, p := range d.queries() {
			for _, tg := range p.Targets {
				expr := dashboardVar.ReplaceAllString(grafanaVars.Replace(tg.Expr), "x")
				rules = append(rules, recording{Record: fmt.Sprintf("duomq:dashboard_query:%d", len(rules)), Expr: expr})
				where = append(where, fmt.Sprintf("%s, panel %q: %s", d.file, p.Title, tg.Expr))
			}
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", file).CombinedOutput(); err != nil {
		// Name the queries promtool refused (it names the rules by index).
		var bad []string
		for _, m := range regexp.MustCompile(`duomq:dashboard_query:(\d+)`).FindAllStringSubmatch(string(out), -1) {
			var i int
			fmt.Sscan(m[1], &i)
			bad = append(bad, where[i])
		}
		t.Fatalf("promtool check rules (dashboard queries): %v\n%s\n%s", err, out, strings.Join(bad, "\n"))
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

var usedMetric = regexp.MustCompile(`duomq_[a-z0-9_]+`)

// undefined returns the duomq_ metrics text uses that no Go file defines.
func undefined(text string, defined map[string]bool) []string {
	var out []string
	for _, name := range usedMetric.FindAllString(text, -1) {
		if !defined[metricName(name, defined)] && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func TestMetricNamesExist(t *testing.T) {
	defined := definedMetrics(t)
	if len(defined) == 0 {
		t.Fatal("no duomq_ metric names found in the Go sources")
	}
	b, err := os.ReadFile(filepath.Join(deployDir(t), promConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range undefined(string(b), defined) {
		t.Errorf("%s uses %s, which no non-test Go file defines", promConfig, name)
	}
	for _, r := range loadRules(t) {
		if !usedMetric.MatchString(r.Expr) && !strings.Contains(r.Expr, "up{") {
			t.Errorf("alert %s uses no duomq_ metric", r.Alert)
		}
		for _, name := range undefined(r.Expr, defined) {
			t.Errorf("alert %s uses %s, which no non-test Go file defines", r.Alert, name)
		}
	}
	for _, d := range loadDashboards(t) {
		uses := 0
		for _, v := range d.Templating.List {
			for _, name := range undefined(string(v.Query), defined) {
				t.Errorf("%s: variable %s uses %s, which no non-test Go file defines", d.file, v.Name, name)
			}
		}
		for _, p := range d.queries() {
			for _, tg := range p.Targets {
				if usedMetric.MatchString(tg.Expr) {
					uses++
				}
				for _, name := range undefined(tg.Expr, defined) {
					t.Errorf("%s: panel %q uses %s, which no non-test Go file defines", d.file, p.Title, name)
				}
			}
		}
		if uses == 0 {
			t.Errorf("%s uses no duomq_ metric", d.file)
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
	if got := undefined(`rate(duomq_x_seconds_bucket[5m]) + duomq_z_total + duomq_z_total`, defined); !slices.Equal(got, []string{"duomq_z_total"}) {
		t.Errorf("undefined = %v, want [duomq_z_total]", got)
	}
}
