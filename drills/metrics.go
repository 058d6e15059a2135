package drills

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricSum is the value of a metric assertion: the sum, the smallest and
// the largest of the samples of one counter or gauge, over endpoints,
// whose labels include want.
type metricSum struct {
	Value    float64 // the sum
	Min, Max float64 // meaningful when Series > 0
	Series   int     // samples aggregated
	// Endpoints is how many endpoints served the metric; Failed the
	// endpoints that could not be scraped.
	Endpoints int
	Failed    []string
}

// add aggregates one sample.
func (s *metricSum) add(v float64) {
	if s.Series == 0 || v < s.Min {
		s.Min = v
	}
	if s.Series == 0 || v > s.Max {
		s.Max = v
	}
	s.Value += v
	s.Series++
}

// of is the aggregate named by a MetricBound (the sum by default).
func (s metricSum) of(aggregate string) float64 {
	switch aggregate {
	case AggregateMin:
		return s.Min
	case AggregateMax:
		return s.Max
	}
	return s.Value
}

// scrapeSum scrapes each URL (Prometheus text format) and aggregates the
// matching samples of name. Histograms and summaries are refused: bound
// their _count or _sum through a recording rule instead.
func scrapeSum(ctx context.Context, hc *http.Client, urls []string, name string, want map[string]string) (metricSum, error) {
	var out metricSum
	for _, u := range urls {
		fams, err := scrape(ctx, hc, u)
		if err != nil {
			out.Failed = append(out.Failed, fmt.Sprintf("%s: %v", u, err))
			continue
		}
		fam, ok := fams[name]
		if !ok {
			continue
		}
		out.Endpoints++
		for _, m := range fam.GetMetric() {
			if !hasLabels(m, want) {
				continue
			}
			switch fam.GetType() {
			case dto.MetricType_COUNTER:
				out.add(m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				out.add(m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				out.add(m.GetUntyped().GetValue())
			default:
				return out, fmt.Errorf("metric %s is a %s: assert on a counter or a gauge", name, strings.ToLower(fam.GetType().String()))
			}
		}
	}
	return out, nil
}

// scrape reads one /metrics endpoint.
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining only
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// describeMetric writes name{k="v",...} with the labels sorted.
func describeMetric(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// checkMetric evaluates a metric bound now, against the metrics
// endpoints of its site (every site when none is named).
func (r *drillRun) checkMetric(ctx context.Context, a MetricBound) (AssertionResult, error) {
	what := describeMetric(a.Metric, a.Labels)
	if a.Aggregate != "" && a.Aggregate != AggregateSum {
		what = a.Aggregate + " of " + what
	}
	var urls []string
	if a.Site != "" {
		site, ok := r.f.Sites[a.Site]
		if !ok {
			return AssertionResult{}, fmt.Errorf("assert: no site %q in the cluster file", a.Site)
		}
		urls = site.Metrics
		what += " in " + a.Site
	} else {
		for _, name := range r.f.SiteNames() {
			urls = append(urls, r.f.Sites[name].Metrics...)
		}
	}
	if len(urls) == 0 {
		return AssertionResult{}, fmt.Errorf("assert: the cluster file lists no metrics endpoint for %s", what)
	}
	sum, err := scrapeSum(ctx, http.DefaultClient, urls, a.Metric, a.Labels)
	if err != nil {
		return AssertionResult{}, err
	}
	res := AssertionResult{What: what, Want: bounds(a.Min, a.Max)}
	switch {
	case sum.Series == 0:
		res.Got = fmt.Sprintf("no such series (%d of %d endpoints answered)", len(urls)-len(sum.Failed), len(urls))
	default:
		v := sum.of(a.Aggregate)
		res.Got = model.SampleValue(v).String()
		res.Pass = (a.Min == nil || v >= *a.Min) && (a.Max == nil || v <= *a.Max)
	}
	return res, nil
}

// bounds writes ">= min", "<= max" or "in [min, max]".
func bounds(lo, hi *float64) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("in [%g, %g]", *lo, *hi)
	case lo != nil:
		return fmt.Sprintf(">= %g", *lo)
	default:
		return fmt.Sprintf("<= %g", *hi)
	}
}
