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
)

func TestParseRefusesBadScenarios(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "name: x\nstepz: []\n", "unknown field"},
		{"no steps", "name: x\ntopology: {local: {}}\n", "steps is empty"},
		{"unknown action", "name: x\nsteps: [{action: explode}]\n", `unknown action "explode"`},
		{"wait without duration", "name: x\nsteps: [{action: wait}]\n", "for: a positive duration"},
		{"switchover without target", "name: x\nsteps: [{action: switchover, to: idc-b}]\n", "topic or dc"},
		{"producer of an unknown topic", "name: x\nworkload: {producers: [{dc: idc-a, topic: nope, rate: 1}]}\nsteps: [{action: wait, for: 1s}]\n", `topic "nope" is not in workload.topics`},
		{"ordered topic without primary", "name: x\nworkload: {topics: [{name: o, ordered: true}]}\nsteps: [{action: wait, for: 1s}]\n", "needs primary"},
		{"bad duration", "name: x\nsteps: [{action: wait, for: soon}]\n", "invalid duration"},
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
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestPlannedSwitchoverDrill runs the shipped drill 1 end to end on the
// local topology (site processes of a freshly built duomq binary).
func TestPlannedSwitchoverDrill(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "duomq")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/duomq/duomq/cmd/duomq").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	s, err := Load("scenarios/01-planned-switchover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, s, Options{Dir: t.TempDir(), Binary: bin, Out: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	rep.PrintSummary(&buf)
	t.Log("\n" + buf.String())
	if !rep.Pass || len(rep.Steps) != len(s.Steps) || len(rep.Assertions) == 0 {
		t.Fatalf("drill did not pass: %+v", rep.Errors)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(path)
	if err != nil || back.Scenario != s.Name || len(back.Figures) != len(rep.Figures) {
		t.Fatalf("report round trip: %v %+v", err, back)
	}
}
