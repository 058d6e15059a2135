package devcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
)

// maxSeriesPerEndpoint bounds what one process may expose: a few hundred
// series per topic at most, so thousands mean an unbounded label crept in.
const maxSeriesPerEndpoint = 2000

// forbiddenLabels would give a series per message or per client.
var forbiddenLabels = map[string]bool{"id": true, "message_id": true, "client_id": true, "receipt": true}

// TestMetricsEndpoints scrapes every component's /metrics in the local
// topology, after traffic so histograms and labelled series exist, and
// checks each body with the standard promtool linter and for bounded labels.
func TestMetricsEndpoints(t *testing.T) {
	promtool := lookPromtool(t)
	_, _, f := startDev(t)
	store := metaStore(t, f.EtcdEndpoints())
	if _, err := store.CreateTopic(context.Background(), meta.Topic{Name: "metrics", Queues: 2}); err != nil {
		t.Fatal(err)
	}
	for _, dc := range []string{SiteA, SiteB} {
		for i := 0; i < 3; i++ {
			eventually(t, 10*time.Second, "send through the proxy of "+dc, func() bool { return proxySendsLocally(t, f.Sites[dc].Proxy, "metrics", dc) })
		}
	}
	var all bytes.Buffer
	for _, u := range metricsURLs(t, f) {
		body := scrape(t, u)
		all.Write(body)
		checkCardinality(t, u, body)
		if promtool == "" {
			continue
		}
		if out, err := promtoolCheck(promtool, body); err != nil {
			t.Errorf("promtool check metrics %s: %v\n%s", u, err, out)
		}
	}
	// The traffic must have produced the series worth linting.
	for _, want := range []string{
		`duomq_proxy_sent_messages_total{dc="idc-a",topic="metrics"}`,
		`duomq_proxy_request_duration_seconds_bucket{`,
		`duomq_broker_sent_messages_total{topic="metrics"}`,
		`duomq_broker_send_duration_seconds_bucket{`,
	} {
		if !bytes.Contains(all.Bytes(), []byte(want)) {
			t.Errorf("no endpoint exposes %s", want)
		}
	}
}

// TestPromtoolCatchesBadMetrics keeps the check above honest: promtool
// must fail on the mistakes it is there to catch.
func TestPromtoolCatchesBadMetrics(t *testing.T) {
	promtool := lookPromtool(t)
	if promtool == "" {
		return
	}
	bad := "# HELP duomq_x_requests Requests.\n# TYPE duomq_x_requests counter\nduomq_x_requests 1\n" +
		"# TYPE duomq_x_latency_milliseconds gauge\nduomq_x_latency_milliseconds 2\n"
	out, err := promtoolCheck(promtool, []byte(bad))
	if err == nil {
		t.Fatalf("promtool accepted bad metrics:\n%s", out)
	}
	for _, want := range []string{`"_total" suffix`, "no help text", `base unit "seconds"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("promtool output lacks %q:\n%s", want, out)
		}
	}
}

func TestLabelNames(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
	}{
		{"up 1", ""},
		{`a_total{topic="t"} 3`, "topic"},
		{`a_bucket{dc="x",le="+Inf"} 3`, "dc le"},
		{`a{v="q\"id=\"1",  client_id="c"} 1 1700000000`, "v client_id"},
	} {
		got, err := labelNames(tc.line)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("labelNames(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
		}
	}
	if _, err := labelNames(`a{v="open} 1`); err == nil {
		t.Error("unterminated label value accepted")
	}
}

// promtoolCheck lints one exposition body; a non-nil error means promtool
// found problems (listed in the output) or could not run.
func promtoolCheck(promtool string, body []byte) ([]byte, error) {
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	return cmd.CombinedOutput()
}

// lookPromtool returns promtool's path, or "" (after saying so) when it is
// not installed outside CI. The test tools (scripts/setup.sh) install it.
func lookPromtool(t *testing.T) string {
	path, err := exec.LookPath("promtool")
	if errors.Is(err, exec.ErrNotFound) {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool missing in CI (scripts/setup.sh installs prometheus)")
		}
		t.Log("NOT RUN: promtool check (promtool not installed; scripts/setup.sh installs it)")
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// metricsURLs lists every site's metrics endpoints and checks that each
// component (nameserver, brokers, proxy) of the DC sites has one.
func metricsURLs(t *testing.T, f clusterfile.File) []string {
	t.Helper()
	var urls []string
	for _, name := range f.SiteNames() {
		s := f.Sites[name]
		if s.Proxy != "" {
			if want := len(s.Brokers) + 2; len(s.Metrics) < want {
				t.Errorf("site %s lists %d metrics endpoints, want at least %d: %v", name, len(s.Metrics), want, s.Metrics)
			}
		}
		urls = append(urls, s.Metrics...)
	}
	if len(urls) == 0 {
		t.Fatal("cluster.json lists no metrics endpoints")
	}
	return urls
}

func scrape(t *testing.T, url string) []byte {
	t.Helper()
	cli := http.Client{Timeout: 5 * time.Second}
	resp, err := cli.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s %v", url, resp.Status, err)
	}
	return body
}

// checkCardinality fails on per-message or per-client labels and on an
// endpoint exposing too many series.
func checkCardinality(t *testing.T, url string, body []byte) {
	t.Helper()
	series := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		series++
		names, err := labelNames(line)
		if err != nil {
			t.Errorf("%s: %v: %q", url, err, line)
			continue
		}
		for _, n := range names {
			if forbiddenLabels[n] {
				t.Errorf("%s: unbounded label %q: %s", url, n, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	if series >= maxSeriesPerEndpoint {
		t.Errorf("%s exposes %d series, want fewer than %d", url, series, maxSeriesPerEndpoint)
	}
}

// labelNames returns the label names of one text-format sample line,
// `name{a="x",b="y\"z"} value`.
func labelNames(line string) ([]string, error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 || line[i] == ' ' {
		return nil, nil
	}
	var names []string
	rest := line[i+1:]
	for {
		rest = strings.TrimLeft(rest, " ,")
		if strings.HasPrefix(rest, "}") {
			return names, nil
		}
		eq := strings.Index(rest, `="`)
		if eq < 0 {
			return nil, fmt.Errorf("malformed labels")
		}
		names = append(names, strings.TrimSpace(rest[:eq]))
		rest = rest[eq+2:]
		end := closingQuote(rest)
		if end < 0 {
			return nil, fmt.Errorf("unterminated label value")
		}
		rest = rest[end+1:]
	}
}

// closingQuote is the index of the first unescaped '"' in s, or -1.
func closingQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}
