package drills

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/duomq/duomq/internal/atomicfile"
)

// ReportVersion is the version of the report's JSON layout
// (docs/drills.md describes it).
const ReportVersion = 1

// Report is a drill's outcome.
type Report struct {
	Version  int          `json:"version"`
	Scenario string       `json:"scenario"`
	Started  time.Time    `json:"started"`
	Ended    time.Time    `json:"ended"`
	Steps    []StepResult `json:"steps"`
	Faults   []WindowJSON `json:"faults"`
	Figures  []Figures    `json:"figures"`
	RTO      []RTOJSON    `json:"rto"`
	// Phases: send throughput and latency per class, outside the faults
	// (baseline) and within each.
	Phases     []Phase           `json:"phases"`
	Assertions []AssertionResult `json:"assertions"`
	// Series are per-second throughput and backlog per DC (the charts).
	Series Series `json:"series"`
	Pass   bool   `json:"pass"`
	// Errors are steps or clean-ups that failed (a fault that could not be
	// undone fails the drill).
	Errors []string `json:"errors,omitempty"`
}

// StepResult is one step as it ran.
type StepResult struct {
	Step
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Error string    `json:"error,omitempty"`
	// Detail is what the step reported (a switchover's write pause, ...).
	Detail string `json:"detail,omitempty"`
}

// WindowJSON is a fault window in the report.
type WindowJSON struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// RTOJSON is an RTO in the report, in seconds.
type RTOJSON struct {
	Fault          string  `json:"fault"`
	Class          Class   `json:"class"`
	SendSeconds    float64 `json:"send_seconds"`
	ReceiveSeconds float64 `json:"receive_seconds"`
	// CatchUpSeconds: after the fault ended, until consumers had
	// everything acked before its end.
	CatchUpSeconds float64 `json:"catch_up_seconds"`
}

// AssertionResult is one bound checked.
type AssertionResult struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	return &r, json.Unmarshal(b, &r)
}

// PrintSummary writes the terminal summary: steps, figures, RTOs and
// assertions.
func (r *Report) PrintSummary(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "drill %s: %s in %v\n\n", r.Scenario, verdict(r.Pass), r.Ended.Sub(r.Started).Round(time.Millisecond))
	fmt.Fprintln(tw, "STEP\tACTION\tAT\tTOOK\tRESULT")
	for i, s := range r.Steps {
		res := "ok"
		if s.Error != "" {
			res = "error: " + s.Error
		} else if s.Detail != "" {
			res = s.Detail
		}
		fmt.Fprintf(tw, "%d\t%s\t%v\t%v\t%s\n", i+1, describe(s.Step), s.Start.Sub(r.Started).Round(time.Millisecond),
			s.End.Sub(s.Start).Round(time.Millisecond), res)
	}
	fmt.Fprintln(tw, "\nCLASS\tSENT\tACKED\tDELIVERED\tLOST\tRPO\tDUPLICATES\tREORDERED")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.2fs\t%d\t%d\n", f.Class, f.Attempted, f.Acked, f.Deliveries, f.Lost, f.RPOSeconds, f.Duplicates, f.Reordered)
	}
	if len(r.RTO) > 0 {
		fmt.Fprintln(tw, "\nFAULT\tCLASS\tSEND RTO\tRECEIVE RTO\tCATCH-UP")
		for _, x := range r.RTO {
			fmt.Fprintf(tw, "%s\t%s\t%.2fs\t%.2fs\t%.2fs\n", x.Fault, x.Class, x.SendSeconds, x.ReceiveSeconds, x.CatchUpSeconds)
		}
	}
	if len(r.Phases) > 0 {
		fmt.Fprintln(tw, "\nPHASE\tCLASS\tACKED\tMSG/S\tP50\tP99\tMAX")
		for _, p := range r.Phases {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2fms\t%.2fms\t%.2fms\n", p.Phase, p.Class, p.Acked, p.Throughput, p.P50ms, p.P99ms, p.MaxMs)
		}
	}
	if len(r.Assertions) > 0 {
		fmt.Fprintln(tw, "\nASSERTION\tWANT\tGOT\tRESULT")
		for _, a := range r.Assertions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.What, a.Want, a.Got, verdict(a.Pass))
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "error: %s\n", e)
	}
	tw.Flush()
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// describe is a step in a few words.
func describe(s Step) string {
	parts := []string{s.Action}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("topic", s.Topic)
	add("dc", s.DC)
	add("to", s.To)
	add("site", s.Site)
	add("from", strings.Join(s.From, ","))
	add("component", s.Component)
	add("replica_set", s.ReplicaSet)
	if s.Delay > 0 {
		add("delay", time.Duration(s.Delay).String())
	}
	if s.Until != nil {
		add("until", s.Until.String())
	}
	if s.For > 0 {
		add("for", time.Duration(s.For).String())
	}
	return strings.Join(parts, " ")
}
