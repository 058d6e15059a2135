package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/duomq/duomq/dr/meta"
)

func TestTrafficGauges(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	dcs := []meta.DC{{Name: "idc-a"}, {Name: "idc-b"}}
	m.setTraffic(meta.Traffic{Weights: map[string]int{"idc-a": 3, "idc-b": 1}, BlockedDCs: []string{"idc-b"}}, dcs)
	if w := testutil.ToFloat64(m.weight.WithLabelValues("idc-a")); w != 3 {
		t.Errorf("weight{idc-a} = %v, want 3", w)
	}
	if b := testutil.ToFloat64(m.blocked.WithLabelValues("idc-b")); b != 1 {
		t.Errorf("blocked{idc-b} = %v, want 1", b)
	}
	// Weights removed, idc-b unblocked: no weight series, blocked 0.
	m.setTraffic(meta.Traffic{}, dcs)
	if n := testutil.CollectAndCount(m.weight); n != 0 {
		t.Errorf("%d weight series left after the weights were removed", n)
	}
	if b := testutil.ToFloat64(m.blocked.WithLabelValues("idc-b")); b != 0 {
		t.Errorf("blocked{idc-b} = %v, want 0", b)
	}
}
