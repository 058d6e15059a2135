package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/meta/member"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/logging"
)

// runConfigValidate runs `duomq config validate args...` and returns its
// output and error.
func runConfigValidate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"config", "validate"}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigValidateDeployExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "examples", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := runConfigValidate(t, f)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !regexp.MustCompile(`: ok \((broker|nameserver|proxy|meta)\)\n$`).MatchString(out) {
				t.Fatalf("output %q does not end with ok", out)
			}
		})
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name, kind, body string
		want             []string // each the start of a reported problem
	}{
		{"unknown key", "", "broker:\n  flush-mod: sync\n", []string{"broker.flush-mod: unknown key"}},
		{"unknown top-level key", "", "broker: {}\nbogus: 1\n", []string{"bogus: unknown key"}},
		{"wrong type", "", "proxy:\n  nameservers: {idc-a: [h:1]}\n  limits: {max-batch: many}\n",
			[]string{"proxy.limits.max-batch: cannot parse"}},
		{"several at once", "broker", `heartbeat-interval: soon
broker:
  flush-mod: sync
  segment-bytes: big
  retry-backoff: [1s, later]
  writable: maybe
log: {level: loud, colour: red}
`, []string{
			"heartbeat-interval: ", "broker.flush-mod: unknown key", "broker.segment-bytes: cannot parse",
			"broker.retry-backoff[1]: ", "broker.writable: cannot parse", "log.colour: unknown key",
			`log: log level "loud"`,
		}},
		{"invalid value", "", "broker:\n  flush-mode: fast\n", []string{`broker: broker config: flush-mode "fast"`}},
		{"invalid nameserver", "nameserver", "nameserver:\n  lease: 0s\n", []string{"nameserver: nameserver config: lease"}},
		{"invalid member", "", "member:\n  name: idc-a\n  data-dir: d\n  client-url: http://h:2379\n  peer-url: http://h:2380\n  initial-cluster: {idc-a: http://h:2380}\n  heartbeat-interval: 1us\n",
			[]string{"member: etcd member: invalid config: heartbeat-interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, "c.yaml", tt.body)
			args := []string{path}
			if tt.kind != "" {
				args = []string{"--kind", tt.kind, path}
			}
			out, err := runConfigValidate(t, args...)
			if err == nil {
				t.Fatalf("validated:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, path+": "+w) {
					t.Errorf("no %q in\n%s", w, out)
				}
			}
			if tt.kind == "" && !strings.Contains(out, "inferred") {
				t.Errorf("the inferred kind is not said:\n%s", out)
			}
		})
	}
}

func TestConfigValidateKind(t *testing.T) {
	both := writeConfig(t, "both.yaml", "broker: {}\nproxy: {}\n")
	if out, err := runConfigValidate(t, both); err == nil || !strings.Contains(err.Error(), "--kind") {
		t.Fatalf("ambiguous file: %v\n%s", err, out)
	}
	ns := writeConfig(t, "ns.yaml", "nameserver: {dc: idc-b}\n")
	out, err := runConfigValidate(t, "--kind", "nameserver", ns)
	if err != nil || out != ns+": ok (nameserver)\n" {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := runConfigValidate(t, "--kind", "broker", ns); err == nil {
		t.Fatal("a nameserver file validated as a broker's")
	}
}

// leafKeys lists every configuration key of a process struct, the way
// setDefaults walks it.
func leafKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		ft := t.Field(i).Type
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
			keys = append(keys, leafKeys(prefix+tag+".", ft)...)
			continue
		}
		keys = append(keys, prefix+tag)
	}
	return keys
}

// TestConfigurationDocComplete fails when a key of a process is missing
// from its command's section of docs/configuration.md.
func TestConfigurationDocComplete(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(string(doc), "\n## ")[1:] {
		heading, body, _ := strings.Cut(s, "\n")
		sections[heading] = body
	}
	for command, pc := range map[string]any{
		"broker":     daemon.BrokerProcess{},
		"nameserver": daemon.NameserverProcess{},
		"proxy":      daemon.ProxyProcess{},
		"replicator": daemon.ReplicatorProcess{},
		"meta":       metaProcess{Member: member.Config{}, Log: logging.Config{}},
	} {
		body, ok := sections["`duomq "+command+"`"]
		if !ok {
			t.Errorf("docs/configuration.md has no section `duomq %s`", command)
			continue
		}
		var missing []string
		for _, k := range leafKeys("", reflect.TypeOf(pc)) {
			if !strings.Contains(body, "`"+k+"`") {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			t.Errorf("docs/configuration.md, section `duomq %s`, does not document: %s", command, strings.Join(missing, ", "))
		}
	}
}
