package drills

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/duomq/duomq/internal/clusterfile"
)

// metricsServer serves a registry with a gauge vector, a counter and a
// histogram, as a component's /metrics does.
func metricsServer(t *testing.T, followers map[string]float64) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "duomq_broker_sync_followers", Help: "h"}, []string{"topic"})
	for topic, v := range followers {
		g.WithLabelValues(topic).Set(v)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "duomq_test_events_total", Help: "h"})
	c.Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "duomq_test_duration_seconds", Help: "h"})
	h.Observe(0.1)
	reg.MustRegister(g, c, h)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func TestScrapeSum(t *testing.T) {
	a := metricsServer(t, map[string]float64{"orders": 1, "payments": 0})
	b := metricsServer(t, map[string]float64{"orders": 1})
	ctx := context.Background()
	sum, err := scrapeSum(ctx, http.DefaultClient, []string{a, b}, "duomq_broker_sync_followers", map[string]string{"topic": "orders"})
	if err != nil || sum.Value != 2 || sum.Series != 2 || sum.Endpoints != 2 {
		t.Fatalf("orders: %+v, %v; want 2 over 2 series", sum, err)
	}
	sum, err = scrapeSum(ctx, http.DefaultClient, []string{a, b}, "duomq_broker_sync_followers", nil)
	if err != nil || sum.Value != 2 || sum.Series != 3 {
		t.Fatalf("all topics: %+v, %v; want 2 over 3 series", sum, err)
	}
	sum, err = scrapeSum(ctx, http.DefaultClient, []string{a, "http://127.0.0.1:1/metrics"}, "duomq_test_events_total", nil)
	if err != nil || sum.Value != 3 || len(sum.Failed) != 1 {
		t.Fatalf("counter with one endpoint down: %+v, %v", sum, err)
	}
	if _, err := scrapeSum(ctx, http.DefaultClient, []string{a}, "duomq_test_duration_seconds", nil); err == nil || !strings.Contains(err.Error(), "histogram") {
		t.Fatalf("histogram: err %v, want a refusal naming the type", err)
	}
}

func TestCheckMetric(t *testing.T) {
	url := metricsServer(t, map[string]float64{"orders": 2})
	r := &drillRun{f: clusterfile.File{Sites: map[string]clusterfile.Site{"idc-a": {Metrics: []string{url}}, "idc-b": {}}}}
	one, three := 1.0, 3.0
	tests := []struct {
		name string
		a    Assertion
		pass bool
		got  string
	}{
		{"within", Assertion{Metric: "duomq_broker_sync_followers", Labels: map[string]string{"topic": "orders"}, Site: "idc-a", Min: &one}, true, "2"},
		{"over the max", Assertion{Metric: "duomq_broker_sync_followers", Site: "idc-a", Min: &three}, false, "2"},
		{"every site", Assertion{Metric: "duomq_broker_sync_followers", Max: &three}, true, "2"},
		{"no such series", Assertion{Metric: "duomq_broker_sync_followers", Labels: map[string]string{"topic": "nope"}, Min: &one}, false, "no such series"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.checkMetric(context.Background(), tt.a)
			if err != nil || res.Pass != tt.pass || !strings.HasPrefix(res.Got, tt.got) {
				t.Fatalf("%+v, %v; want pass=%v got %q", res, err, tt.pass, tt.got)
			}
		})
	}
	if _, err := r.checkMetric(context.Background(), Assertion{Metric: "x", Site: "idc-b", Min: &one}); err == nil {
		t.Fatal("a site with no metrics endpoint: no error")
	}
	if _, err := r.checkMetric(context.Background(), Assertion{Metric: "x", Site: "idc-z", Min: &one}); err == nil {
		t.Fatal("an unknown site: no error")
	}
}
