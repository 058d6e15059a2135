package drills

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
	sum, err = scrapeSum(ctx, http.DefaultClient, []string{a, b}, "duomq_broker_sync_followers", nil)
	if err != nil || sum.of(AggregateMin) != 0 || sum.of(AggregateMax) != 1 || sum.of("") != 2 {
		t.Fatalf("all topics: min %v, max %v, sum %v (%v); want 0, 1, 2", sum.Min, sum.Max, sum.Value, err)
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
		a    MetricBound
		pass bool
		got  string
	}{
		{"within", MetricBound{Metric: "duomq_broker_sync_followers", Labels: map[string]string{"topic": "orders"}, Site: "idc-a", Min: &one}, true, "2"},
		{"over the max", MetricBound{Metric: "duomq_broker_sync_followers", Site: "idc-a", Min: &three}, false, "2"},
		{"every site", MetricBound{Metric: "duomq_broker_sync_followers", Max: &three}, true, "2"},
		{"no such series", MetricBound{Metric: "duomq_broker_sync_followers", Labels: map[string]string{"topic": "nope"}, Min: &one}, false, "no such series"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.checkMetric(context.Background(), tt.a)
			if err != nil || res.Pass != tt.pass || !strings.HasPrefix(res.Got, tt.got) {
				t.Fatalf("%+v, %v; want pass=%v got %q", res, err, tt.pass, tt.got)
			}
		})
	}
	if _, err := r.checkMetric(context.Background(), MetricBound{Metric: "x", Site: "idc-b", Min: &one}); err == nil {
		t.Fatal("a site with no metrics endpoint: no error")
	}
	if _, err := r.checkMetric(context.Background(), MetricBound{Metric: "x", Site: "idc-z", Min: &one}); err == nil {
		t.Fatal("an unknown site: no error")
	}
}

// A metric bound aggregates the samples of every endpoint of the site:
// their sum by default, or the smallest or largest, as the brokers'
// per-topic epochs need.
func TestCheckMetricAggregates(t *testing.T) {
	a := metricsServer(t, map[string]float64{"orders": 1})
	b := metricsServer(t, map[string]float64{"orders": 2, "payments": 4})
	r := &drillRun{f: clusterfile.File{Sites: map[string]clusterfile.Site{"idc-a": {Metrics: []string{a, b}}}}}
	two := 2.0
	tests := []struct {
		aggregate string
		labels    map[string]string
		pass      bool
		what, got string
	}{
		{"", nil, true, "duomq_broker_sync_followers in idc-a", "7"},
		{AggregateSum, map[string]string{"topic": "orders"}, true, "duomq_broker_sync_followers{topic=\"orders\"} in idc-a", "3"},
		{AggregateMin, map[string]string{"topic": "orders"}, false, "min of duomq_broker_sync_followers{topic=\"orders\"} in idc-a", "1"},
		{AggregateMax, map[string]string{"topic": "orders"}, true, "max of duomq_broker_sync_followers{topic=\"orders\"} in idc-a", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.aggregate, func(t *testing.T) {
			res, err := r.checkMetric(context.Background(), MetricBound{Metric: "duomq_broker_sync_followers", Labels: tt.labels, Site: "idc-a", Aggregate: tt.aggregate, Min: &two})
			if err != nil || res.Pass != tt.pass || res.What != tt.what || res.Got != tt.got {
				t.Fatalf("%+v, %v; want %q = %s, pass=%v", res, err, tt.what, tt.got, tt.pass)
			}
		})
	}
}

// A wait on a metric holds once the bound does, and says what it saw
// until then.
func TestWaitConditionOnAMetric(t *testing.T) {
	url := metricsServer(t, map[string]float64{"orders": 1})
	r := &drillRun{f: clusterfile.File{Sites: map[string]clusterfile.Site{"idc-a": {Metrics: []string{url}}}}}
	one, two := 1.0, 2.0
	ok, why := r.holds(context.Background(), Condition{MetricBound: MetricBound{Metric: "duomq_broker_sync_followers", Site: "idc-a", Min: &two}}, time.Now())
	if ok || !strings.Contains(why, "= 1 (want >= 2)") {
		t.Fatalf("held=%v (%s); want not held, saying the value", ok, why)
	}
	if ok, why := r.holds(context.Background(), Condition{MetricBound: MetricBound{Metric: "duomq_broker_sync_followers", Site: "idc-a", Min: &one}}, time.Now()); !ok {
		t.Fatalf("not held: %s", why)
	}
	if ok, _ := r.holds(context.Background(), Condition{MetricBound: MetricBound{Metric: "duomq_no_such_metric", Site: "idc-a", Min: &one}}, time.Now()); ok {
		t.Fatal("a metric no endpoint serves held")
	}
}
