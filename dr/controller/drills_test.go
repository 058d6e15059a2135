package controller_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
)

// apiDrillHistory stores drill reports as package drills does (whole
// reports under drills/<start time>-<scenario>) and reads their summaries
// through a candidate that does not lead.
func apiDrillHistory(t *testing.T, e *env) {
	a := newAPIEnv(t, e, noHooks)
	follower := a.start(testConfig("c2"), noHooks)
	base := serveAPI(t, follower.Controller).URL
	bearer := "Bearer " + token

	get := func(path string) []controller.DrillSummary {
		t.Helper()
		status, _, body := call(t, base, "GET", path, bearer, "")
		var res struct {
			Drills []controller.DrillSummary `json:"drills"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Drills == nil {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		return res.Drills
	}
	if got := get("/v1/drills"); len(got) != 0 {
		t.Fatalf("empty history: %+v", got)
	}

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	type report struct {
		Version  int            `json:"version"`
		Scenario string         `json:"scenario"`
		Started  time.Time      `json:"started"`
		Ended    time.Time      `json:"ended"`
		Pass     bool           `json:"pass"`
		Series   map[string]any `json:"series"`
	}
	var want []controller.DrillSummary
	for i, sc := range []string{"planned-switchover", "dc-loss", "failback"} {
		r := report{Version: 1, Scenario: sc, Started: t0.Add(time.Duration(i) * time.Hour), Pass: i != 1,
			Series: map[string]any{"idc-a": []int{1, 2, 3}}}
		r.Ended = r.Started.Add(90 * time.Second)
		id := r.Started.Format("20060102T150405.000Z") + "-" + sc
		a.must(a.store.PutJSON(a.ctx(), meta.KeyDrills+id, r, meta.AnyRevision))
		want = append(want, controller.DrillSummary{ID: id, Scenario: sc, Started: r.Started, Finished: r.Ended, Passed: r.Pass})
	}
	// A record that is not a report is skipped, not an error.
	if _, err := a.cli.Put(a.ctx(), a.store.Key(meta.KeyDrills+"zz-broken"), "{not json"); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(want)

	equal := func(got, want []controller.DrillSummary) bool {
		return slices.EqualFunc(got, want, func(g, w controller.DrillSummary) bool {
			return g.ID == w.ID && g.Scenario == w.Scenario && g.Started.Equal(w.Started) && g.Finished.Equal(w.Finished) && g.Passed == w.Passed
		})
	}
	if got := get("/v1/drills"); !equal(got, want) {
		t.Fatalf("history:\n got %+v\nwant %+v", got, want)
	}
	if got := get("/v1/drills?limit=3"); !equal(got, want[:2]) {
		t.Fatalf("limit 3 (one record broken):\n got %+v\nwant %+v", got, want[:2])
	}

	for _, bad := range []string{"0", "-1", "x", "1001"} {
		status, _, body := call(t, base, "GET", "/v1/drills?limit="+bad, bearer, "")
		if status != http.StatusBadRequest || reasonOf(t, body) != controller.ReasonInvalidArgument {
			t.Errorf("limit=%s: %d %s", bad, status, body)
		}
	}
	if status, _, _ := call(t, base, "GET", "/v1/drills", "", ""); status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", status)
	}
	if status, _, _ := call(t, base, "POST", "/v1/drills", bearer, "{}"); status != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", status)
	}
}
