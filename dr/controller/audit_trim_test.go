package controller_test

import (
	"encoding/json"
	"testing"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
)

// TestAuditLogKeepsTheNewest: with audit-keep 3, five traffic changes
// leave the newest three records.
func TestAuditLogKeepsTheNewest(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig("c1")
	cfg.AuditKeep = 3
	c := e.start(cfg, noHooks)
	e.leader(c)
	for i := range 5 {
		req := controller.WeightsRequest{Weights: map[string]int{dcA: 1 + i, dcB: 1}, Actor: "test"}
		if _, err := c.SetWeights(e.ctx(), req); err != nil {
			t.Fatal(err)
		}
	}
	recs := e.audit()
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want the newest 3", len(recs))
	}
	var after meta.Traffic
	if err := json.Unmarshal(recs[len(recs)-1].After, &after); err != nil {
		t.Fatal(err)
	}
	if after.Weights[dcA] != 5 {
		t.Fatalf("the newest record kept has weights %v, want idc-a 5 (the last change)", after.Weights)
	}
}
