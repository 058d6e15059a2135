package statuspage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/dr/statuspage"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/testcluster"
)

// e2eToken is the controller's API token in these tests.
const e2eToken = "status-page-e2e-token"

// startController runs a controller candidate the way `duomq controller`
// and every site of `duomq dev` do (internal/daemon: the API and the page
// on one listener) over the cluster's metadata, and returns its URL.
func startController(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	pc := daemon.DefaultControllerProcess()
	pc.Listen, pc.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	pc.Token = e2eToken
	pc.Controller.ID = "e2e"
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("DUOMQ_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan daemon.Endpoints, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.RunController(ctx, pc, c.Meta(), daemon.Deps{Logger: logger, Ready: func(ep daemon.Endpoints) { ready <- ep }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	select {
	case ep := <-ready:
		return ep.HTTP
	case err := <-done:
		t.Fatalf("controller stopped before serving: %v", err)
	case <-time.After(e2eWait):
		t.Fatalf("controller not serving within %v", e2eWait)
	}
	return ""
}

// apiCall sends a request to the controller with the token and decodes
// the JSON answer into out (when not nil).
func apiCall(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := (&http.Client{Timeout: e2eWait}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

// TestStatusPageInChromium runs two DCs with real brokers, proxies,
// replicators and a controller, opens the status page in headless
// Chromium, and checks that it loads without console errors, shows both
// DCs, the ordered topic, the audit log and the drill history, that its
// consumer lag charts follow a consumer group that pauses (lag grows) and
// resumes (lag drains), and that a traffic change shows up live.
func TestStatusPageInChromium(t *testing.T) {
	b := newBrowser(t) // first: skips at once without chromium
	c := testcluster.New(t, testcluster.Options{})
	const events, orders, group, perDC = "events", "orders", "billing", 25
	c.CreateTopic(t, meta.Topic{Name: events, Queues: 4})
	c.CreateTopic(t, meta.Topic{Name: orders, Queues: 2, Ordered: true, Primary: testcluster.DCA, Replication: meta.ReplicationSync})
	c.CreateGroup(t, meta.Group{Name: group, Subscriptions: []meta.Subscription{{Topic: events}}})
	base := startController(t, c)
	checkTokens(t, base)
	recordHistory(t, c, base, orders)
	cons := newConsumer(t, c, group, events)

	b.navigate(base + "/#token=" + e2eToken)
	chart := func(dc string) string {
		return fmt.Sprintf(`document.querySelector('svg.chart[data-metric="consumer"][data-dc=%q]')`, dc)
	}
	line := func(dc string) string {
		return eval[string](b, chart(dc)+`.querySelector('path.line').getAttribute('d')`)
	}
	for _, dc := range c.DCs() {
		b.waitFor(dc+" shown with a consumer lag of 0",
			fmt.Sprintf(`(() => { const s = %s; return s !== null && s.dataset.latest === '0'; })()`, chart(dc)))
	}
	if loc := eval[string](b, `location.href`); strings.Contains(loc, e2eToken) {
		t.Errorf("the token stays in the address bar: %s", loc)
	}
	b.waitFor("the audit log and the drill history shown",
		`document.getElementById('audit').innerText.includes('switchover') && document.getElementById('drills').innerText.includes('e2e-planned-switchover')`)
	b.expectText(map[string][]string{
		"dcs":     {testcluster.DCA, testcluster.DCB, "broker-a-0", "broker-b-1", "1 live proxy", "Consumer lag", "Replication lag"},
		"ordered": {orders, testcluster.DCB, "sync", "out of sync"},
		"audit":   {"status page test", "e2e"},
		"drills":  {"passed"},
		"traffic": {"equal"},
	})
	for _, dc := range c.DCs() {
		if eval[bool](b, fmt.Sprintf(`document.querySelector('svg.chart[data-metric="replication"][data-dc=%q]') === null`, dc)) {
			t.Errorf("no replication lag chart of %s", dc)
		}
	}

	// Lag: messages for the paused group in both DCs.
	before := map[string]string{}
	for _, dc := range c.DCs() {
		before[dc] = line(dc)
		cons.produce(dc, perDC)
	}
	for _, dc := range c.DCs() {
		b.waitFor(fmt.Sprintf("consumer lag of %s charted at %d", dc, perDC),
			fmt.Sprintf(`Number(%s.dataset.latest) === %d`, chart(dc), perDC))
		if after := line(dc); after == before[dc] {
			t.Errorf("the consumer lag line of %s did not change: %q", dc, after)
		}
	}
	b.screenshot("statuspage-lag.png")

	// The consumer resumes: the lag drains and the charts follow.
	cons.consume(2 * perDC)
	for _, dc := range c.DCs() {
		b.waitFor("consumer lag of "+dc+" back to 0", fmt.Sprintf(`%s.dataset.latest === '0'`, chart(dc)))
	}

	// A traffic change shows up without a reload.
	if code := apiCall(t, "POST", base+"/v1/traffic/weights", `{"weights":{"idc-a":70,"idc-b":30},"actor":"e2e"}`, nil); code != http.StatusOK {
		t.Fatalf("set weights: %d", code)
	}
	b.waitFor("the weights shown", `document.getElementById('traffic').innerText.includes('70%') && document.getElementById('audit').innerText.includes('traffic-weights')`)
	b.screenshot("statuspage.png")
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// checkTokens checks the real handler: the page needs no token, the API
// does.
func checkTokens(t *testing.T, base string) {
	t.Helper()
	cl := &http.Client{Timeout: e2eWait, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/": http.StatusFound, "/ui/": http.StatusOK, "/ui/app.js": http.StatusOK, "/v1/status": http.StatusUnauthorized} {
		resp, err := cl.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s without a token: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// recordHistory makes a transition for the audit log (a switchover of an
// ordered topic to idc-b, by the leader) and stores a drill report as
// package drills does.
func recordHistory(t *testing.T, c *testcluster.Cluster, base, topic string) {
	t.Helper()
	testcluster.Eventually(t, func() bool {
		var st struct {
			Leader *struct{ ID string } `json:"leader"`
		}
		return apiCall(t, "GET", base+"/v1/status", "", &st) == http.StatusOK && st.Leader != nil
	}, "the controller leads")
	body := fmt.Sprintf(`{"topic":%q,"to":%q,"actor":"e2e","reason":"status page test"}`, topic, testcluster.DCB)
	if code := apiCall(t, "POST", base+"/v1/switchover", body, nil); code != http.StatusOK {
		t.Fatalf("switchover: %d", code)
	}
	started := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	drill := map[string]any{"version": 1, "scenario": "e2e-planned-switchover", "started": started, "ended": started.Add(95 * time.Second), "pass": true}
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if _, err := c.Meta().PutJSON(ctx, meta.KeyDrills+started.Format("20060102T150405.000Z")+"-e2e-planned-switchover", drill, meta.AnyRevision); err != nil {
		t.Fatal(err)
	}
}

// consumer is a consumer group of a topic, reached through each DC's
// proxy.
type consumer struct {
	t            *testing.T
	dcs          []string
	proxies      map[string]proxypb.ProxyClient
	group, topic string
}

// newConsumer polls once in each DC, so that the group's committed
// offsets start at the queues' ends, and then pauses.
func newConsumer(t *testing.T, c *testcluster.Cluster, group, topic string) *consumer {
	t.Helper()
	cons := &consumer{t: t, dcs: c.DCs(), proxies: map[string]proxypb.ProxyClient{}, group: group, topic: topic}
	for _, dc := range cons.dcs {
		cons.proxies[dc] = c.ProxyClient(t, dc)
		if n := cons.receive(dc, false); n != 0 {
			t.Fatalf("%s: %d messages before any was sent", dc, n)
		}
	}
	return cons
}

// receive receives through dc's proxy and acks what it got when ack is
// set; it returns the count.
func (cons *consumer) receive(dc string, ack bool) int {
	cons.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	px := cons.proxies[dc]
	res, err := px.Receive(ctx, &proxypb.ReceiveRequest{Group: cons.group, Topic: cons.topic, MaxMessages: 32, WaitMillis: 100})
	if err != nil {
		cons.t.Fatalf("receive through %s: %v", dc, err)
	}
	for _, m := range res.GetMessages() {
		if !ack {
			break
		}
		if _, err := px.Ack(ctx, &proxypb.AckRequest{Group: cons.group, Topic: cons.topic, ReceiptHandle: m.GetReceiptHandle()}); err != nil {
			cons.t.Fatalf("ack through %s: %v", dc, err)
		}
	}
	return len(res.GetMessages())
}

// produce sends n messages through dc's proxy (stored in dc).
func (cons *consumer) produce(dc string, n int) {
	cons.t.Helper()
	msgs := make([]*proxypb.Message, n)
	for i := range msgs {
		msgs[i] = &proxypb.Message{Body: fmt.Appendf(nil, "%s-%d", dc, i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if _, err := cons.proxies[dc].Send(ctx, &proxypb.SendRequest{Topic: cons.topic, Messages: msgs}); err != nil {
		cons.t.Fatalf("send through %s: %v", dc, err)
	}
}

// consume receives and acks n messages.
func (cons *consumer) consume(n int) {
	cons.t.Helper()
	acked := 0
	testcluster.Eventually(cons.t, func() bool {
		for _, dc := range cons.dcs {
			acked += cons.receive(dc, true)
		}
		return acked >= n
	}, "the group consumes %d messages", n)
}

// serveWithPage serves the page and api on one listener, as
// internal/daemon does.
func serveWithPage(t *testing.T, api http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(statuspage.Prefix, statuspage.Handler())
	mux.Handle("/v1/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestStatusPageWithEmptyAnswers serves the page with an API whose
// answers have empty and null fields, then answers that are not JSON, and
// checks that it renders them without console errors. (Non-2xx answers
// are left out: the browser itself logs each as a console error.)
func TestStatusPageWithEmptyAnswers(t *testing.T) {
	b := newBrowser(t)
	var mu sync.Mutex
	answers := map[string]string{
		"/v1/status": `{"controller":"c1","leader":null,"dcs":[{"name":"idc-a","state":"active","alive":null,"down":false},{"name":"idc-b"}],` +
			`"etcd":null,"ordered":[{"topic":"t","lag":null}],"traffic":{},"consumer_lag":null,"transitions":null,"errors":["broker x: unreachable"]}`,
		"/v1/audit":  `{"records":null}`,
		"/v1/drills": `{"drills":[{"id":"d1","scenario":"s","started":"0001-01-01T00:00:00Z"}]}`,
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+e2eToken {
			http.Error(w, `{"error":"token","reason":"UNAUTHENTICATED"}`, http.StatusUnauthorized)
			return
		}
		mu.Lock()
		body, ok := answers[r.URL.Path]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
	base := serveWithPage(t, api)

	b.navigate(base + "/ui/#token=" + e2eToken)
	b.waitFor("both DCs shown", `document.querySelectorAll('#dcs article.dc').length === 2`)
	b.waitFor("the broker error shown", `document.getElementById('problems').innerText.includes('broker x: unreachable')`)
	b.waitFor("empty tables shown", `document.getElementById('audit').innerText.includes('no change recorded yet') && document.getElementById('drills').innerText.includes('failed')`)
	b.expectText(map[string][]string{"ordered": {"t"}, "inprogress": {"none"}})

	mu.Lock()
	answers["/v1/status"] = `{"dcs":null,"ordered":null,"traffic":null}`
	answers["/v1/drills"] = `{"drills":null}`
	mu.Unlock()
	b.waitFor("no DC shown", `document.getElementById('dcs').innerText.includes('no DC recorded') && document.getElementById('drills').innerText.includes('no drill run yet')`)

	mu.Lock()
	answers["/v1/status"] = `null`
	answers["/v1/audit"] = `not json`
	mu.Unlock()
	b.waitFor("the failure shown", `document.getElementById('problems').innerText.includes('audit log: HTTP 200: the answer is not JSON')`)
	b.screenshot("statuspage-empty.png")

	// Forgetting the token asks for it; the form takes it again.
	b.do(chromedp.Click(chromedp.ID("signout")))
	b.waitFor("the token form shown", `!document.getElementById('login').hidden && document.getElementById('app').hidden && sessionStorage.length === 0`)
	b.do(chromedp.SendKeys(chromedp.ID("token-input"), e2eToken), chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))
	b.waitFor("the status shown again", `document.getElementById('login').hidden && !document.getElementById('app').hidden && sessionStorage.length === 1`)
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
