package controller_test

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

func TestControllerAPI(t *testing.T) {
	newEnv := sharedEnv(t)
	t.Run("refuses and changes nothing", func(t *testing.T) { apiRefusesAndChangesNothing(t, newEnv(t)) })
	t.Run("refuses racing requests", func(t *testing.T) { apiRefusesRacingRequests(t, newEnv) })
	t.Run("writes go to the leader", func(t *testing.T) { apiWritesGoToTheLeader(t, newEnv(t)) })
	t.Run("switchover status audit and traffic", func(t *testing.T) { apiSwitchoverStatusAuditAndTraffic(t, newEnv(t)) })
	t.Run("drill history", func(t *testing.T) { apiDrillHistory(t, newEnv(t)) })
}

const token = "s3cret-token"

// apiEnv adds idc-c (down, with alive brokers) and idc-d (active, no
// broker) to the env and serves a leading controller's API.
type apiEnv struct {
	*env
	c   cand
	srv *httptest.Server
}

func newAPIEnv(t *testing.T, e *env, hooks controller.Hooks) *apiEnv {
	t.Helper()
	ctx := e.ctx()
	e.must(e.store.PutDC(ctx, meta.DC{Name: "idc-c", State: meta.DCDown}))
	e.must(e.store.PutDC(ctx, meta.DC{Name: "idc-d"}))
	e.alive("idc-c", "b0")
	e.setQueues(dcA, 10, 20, 30, 40)
	e.setQueues(dcB, 10, 20, 30, 40)
	// idc-d has no broker: automatic failover would mark it down.
	cfg := testConfig("c1")
	cfg.AutoFailover = false
	// The only candidate: a 1 s election lease (testConfig's, for quick
	// re-elections) can lapse on a loaded machine and turn a refusal
	// under test into 503 NOT_LEADER; nothing here needs a quick one.
	cfg.ElectionTTL = 3 * time.Second
	c := e.start(cfg, hooks)
	e.leader(c)
	return &apiEnv{env: e, c: c, srv: serveAPI(t, c.Controller)}
}

func serveAPI(t *testing.T, c *controller.Controller) *httptest.Server {
	t.Helper()
	api, err := controller.NewAPI(c, token)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv
}

// call sends a request without following redirects and returns the
// status and body.
func call(t *testing.T, base, method, path, auth, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	cl := &http.Client{Timeout: wait, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func reasonOf(t *testing.T, b []byte) string {
	t.Helper()
	var e controller.APIError
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	if e.Error == "" {
		t.Fatalf("error body without a message: %s", b)
	}
	return e.Reason
}

// revisions snapshots the routing records, controller state and audit
// log: equal snapshots prove nothing was written there.
func (e *env) revisions() map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	for _, p := range []string{"dcs/", "ordered/", "traffic", "controller/state", meta.KeyAudit} {
		resp, err := e.cli.Get(e.ctx(), e.store.Key(p), clientv3.WithPrefix())
		if err != nil {
			e.t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			out[string(kv.Key)] = kv.ModRevision
		}
	}
	return out
}

func apiRefusesAndChangesNothing(t *testing.T, e *env) {
	a := newAPIEnv(t, e, noHooks)
	bearer := "Bearer " + token
	big := `{"topic":"` + strings.Repeat("x", 2<<20) + `","to":"idc-b"}`
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		reason                         string
	}{
		{"no token", "GET", "/v1/status", "", "", 401, "UNAUTHENTICATED"},
		{"wrong token", "POST", "/v1/switchover", "Bearer nope", `{"topic":"orders","to":"idc-b"}`, 401, "UNAUTHENTICATED"},
		{"token prefix", "POST", "/v1/switchover", "Bearer " + token[:4], `{"topic":"orders","to":"idc-b"}`, 401, "UNAUTHENTICATED"},
		{"basic auth", "POST", "/v1/switchover", "Basic " + token, `{"topic":"orders","to":"idc-b"}`, 401, "UNAUTHENTICATED"},
		{"no token unknown path", "GET", "/v1/nothing", "", "", 401, "UNAUTHENTICATED"},
		{"malformed json", "POST", "/v1/switchover", bearer, `{"topic": "orders", "to": `, 400, "BAD_REQUEST"},
		{"unknown field", "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-b","bogus":1}`, 400, "BAD_REQUEST"},
		{"trailing data", "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-b"} {}`, 400, "BAD_REQUEST"},
		{"empty body", "POST", "/v1/switchover", bearer, ``, 400, "BAD_REQUEST"},
		{"not an object", "POST", "/v1/failover", bearer, `["orders"]`, 400, "BAD_REQUEST"},
		{"wrong type", "POST", "/v1/failover", bearer, `{"topic":"orders","force":"yes"}`, 400, "BAD_REQUEST"},
		{"too large", "POST", "/v1/switchover", bearer, big, 400, "BAD_REQUEST"},
		{"topic and dc", "POST", "/v1/switchover", bearer, `{"topic":"orders","dc":"idc-a","to":"idc-b"}`, 400, "INVALID_ARGUMENT"},
		{"neither topic nor dc", "POST", "/v1/failback", bearer, `{}`, 400, "INVALID_ARGUMENT"},
		{"no target", "POST", "/v1/switchover", bearer, `{"topic":"orders"}`, 400, "INVALID_ARGUMENT"},
		{"bad dc name", "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc b!"}`, 400, "INVALID_ARGUMENT"},
		{"bad topic name", "POST", "/v1/switchover", bearer, `{"topic":"a/b","to":"idc-b"}`, 400, "INVALID_ARGUMENT"},
		{"unordered topic", "POST", "/v1/switchover", bearer, `{"topic":"events","to":"idc-b"}`, 400, "NOT_ORDERED"},
		{"unknown topic", "POST", "/v1/switchover", bearer, `{"topic":"nope","to":"idc-b"}`, 404, "UNKNOWN_TOPIC"},
		{"unknown target", "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-z"}`, 404, "UNKNOWN_DC"},
		{"unknown source dc", "POST", "/v1/switchover", bearer, `{"dc":"idc-z","to":"idc-b"}`, 404, "UNKNOWN_DC"},
		{"already primary", "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-a"}`, 409, "ALREADY_PRIMARY"},
		{"target down", "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-c"}`, 409, "DC_DOWN"},
		{"target without brokers", "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-d"}`, 409, "NO_ALIVE_BROKERS"},
		{"failover of a live primary", "POST", "/v1/failover", bearer, `{"topic":"orders","to":"idc-b"}`, 409, "PRIMARY_ALIVE"},
		{"failover to a down dc", "POST", "/v1/failover", bearer, `{"topic":"orders","to":"idc-c","force":true}`, 409, "DC_DOWN"},
		{"failover to no brokers", "POST", "/v1/failover", bearer, `{"dc":"idc-a","to":"idc-d","force":true}`, 409, "NO_ALIVE_BROKERS"},
		{"failover unknown dc", "POST", "/v1/failover", bearer, `{"dc":"idc-z","force":true}`, 404, "UNKNOWN_DC"},
		{"failback at home", "POST", "/v1/failback", bearer, `{"topic":"orders"}`, 409, "ALREADY_PRIMARY"},
		{"failback without brokers", "POST", "/v1/failback", bearer, `{"dc":"idc-d"}`, 409, "NO_ALIVE_BROKERS"},
		{"traffic switch to a down dc", "POST", "/v1/traffic/switch", bearer, `{"dc":"idc-c"}`, 409, "DC_DOWN"},
		{"traffic switch to no brokers", "POST", "/v1/traffic/switch", bearer, `{"dc":"idc-d"}`, 409, "NO_ALIVE_BROKERS"},
		{"traffic switch unknown", "POST", "/v1/traffic/switch", bearer, `{"dc":"idc-z"}`, 404, "UNKNOWN_DC"},
		{"negative weight", "POST", "/v1/traffic/weights", bearer, `{"weights":{"idc-a":-1,"idc-b":1}}`, 400, "INVALID_ARGUMENT"},
		{"huge weight", "POST", "/v1/traffic/weights", bearer, `{"weights":{"idc-a":10001}}`, 400, "INVALID_ARGUMENT"},
		{"no weights", "POST", "/v1/traffic/weights", bearer, `{"weights":{}}`, 400, "INVALID_ARGUMENT"},
		{"zero weights", "POST", "/v1/traffic/weights", bearer, `{"weights":{"idc-a":0,"idc-b":0}}`, 400, "INVALID_ARGUMENT"},
		{"weight of unknown dc", "POST", "/v1/traffic/weights", bearer, `{"weights":{"idc-a":50,"idc-z":50}}`, 404, "UNKNOWN_DC"},
		{"weight not a number", "POST", "/v1/traffic/weights", bearer, `{"weights":{"idc-a":"half"}}`, 400, "BAD_REQUEST"},
		{"block unknown dc", "POST", "/v1/traffic/block", bearer, `{"dc":"idc-z"}`, 404, "UNKNOWN_DC"},
		{"block without dc", "POST", "/v1/traffic/block", bearer, `{}`, 400, "INVALID_ARGUMENT"},
		{"unblock unknown dc", "POST", "/v1/traffic/unblock", bearer, `{"dc":"idc-z"}`, 404, "UNKNOWN_DC"},
		{"unknown path", "GET", "/v1/nothing", bearer, "", 404, "NOT_FOUND"},
		{"wrong method", "DELETE", "/v1/status", bearer, "", 405, "METHOD_NOT_ALLOWED"},
		{"get a write", "GET", "/v1/switchover", bearer, "", 405, "METHOD_NOT_ALLOWED"},
		{"bad audit limit", "GET", "/v1/audit?limit=x", bearer, "", 400, "INVALID_ARGUMENT"},
		{"audit limit too high", "GET", "/v1/audit?limit=5000", bearer, "", 400, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.revisions()
			status, hdr, body := call(t, a.srv.URL, tt.method, tt.path, tt.auth, tt.body)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			if got := reasonOf(t, body); got != tt.reason {
				t.Fatalf("reason %s, want %s: %s", got, tt.reason, body)
			}
			if status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge")
			}
			if after := a.revisions(); !maps.Equal(before, after) {
				t.Fatalf("a refused request changed etcd:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	if f := a.brokers.Fences(); len(f) != 0 {
		t.Fatalf("refused requests fenced brokers: %v", f)
	}
}

func apiRefusesRacingRequests(t *testing.T, newEnv func(*testing.T) *env) {
	bearer := "Bearer " + token

	t.Run("transition in progress", func(t *testing.T) {
		paused, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		a := newAPIEnv(t, newEnv(t), controller.Hooks{AfterPhase: func(_ controller.Transition, p controller.Phase) error {
			if p == controller.PhaseFence {
				close(paused)
				<-release
			}
			return nil
		}})
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("POST", a.srv.URL+"/v1/switchover", strings.NewReader(`{"topic":"orders","to":"idc-b"}`))
			req.Header.Set("Authorization", bearer)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		<-paused
		before := a.revisions()
		for _, r := range []struct{ path, body string }{
			{"/v1/switchover", `{"topic":"orders","to":"idc-b"}`},
			{"/v1/switchover", `{"dc":"idc-a","to":"idc-b"}`},
			{"/v1/failover", `{"topic":"orders","to":"idc-b","force":true}`},
			{"/v1/traffic/switch", `{"dc":"idc-b"}`},
		} {
			status, _, body := call(t, a.srv.URL, "POST", r.path, bearer, r.body)
			if status != 409 || reasonOf(t, body) != "TRANSITION_IN_PROGRESS" {
				t.Fatalf("%s %s while a switchover runs: %d %s", r.path, r.body, status, body)
			}
		}
		if after := a.revisions(); !maps.Equal(before, after) {
			t.Fatalf("refused requests changed etcd:\nbefore %v\nafter  %v", before, after)
		}
		release <- struct{}{}
		if status := <-done; status != 200 {
			t.Fatalf("the running switchover answered %d", status)
		}
	})

	t.Run("concurrent change of the record", func(t *testing.T) {
		var e *env
		var before map[string]int64
		external := meta.Ordered{Topic: topic, Primary: dcA, Epoch: 7}
		a := newAPIEnv(t, newEnv(t), controller.Hooks{AfterPhase: func(_ controller.Transition, p controller.Phase) error {
			if p == controller.PhasePending {
				_, rev, err := e.store.GetOrdered(e.ctx(), topic)
				if err == nil {
					_, err = e.store.CASOrdered(e.ctx(), topic, rev, external)
				}
				before = e.revisions()
				return err
			}
			return nil
		}})
		e = a.env
		status, _, body := call(t, a.srv.URL, "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-b"}`)
		if status != 409 || reasonOf(t, body) != "CONFLICT" {
			t.Fatalf("switchover racing another writer: %d %s", status, body)
		}
		if got := e.ordered(); got != external {
			t.Fatalf("record %+v, want the other writer's %+v", got, external)
		}
		after := e.revisions()
		for k, v := range before {
			if !strings.Contains(k, "/audit/") && !strings.HasSuffix(k, "controller/state") && after[k] != v {
				t.Fatalf("the refused switchover wrote %s", k)
			}
		}
	})

	t.Run("last dc", func(t *testing.T) {
		a := newAPIEnv(t, newEnv(t), noHooks)
		for _, dc := range []string{"idc-b", "idc-c", "idc-d"} {
			if status, _, body := call(t, a.srv.URL, "POST", "/v1/traffic/block", bearer, `{"dc":"`+dc+`"}`); status != 200 {
				t.Fatalf("block %s: %d %s", dc, status, body)
			}
		}
		before := a.revisions()
		status, _, body := call(t, a.srv.URL, "POST", "/v1/traffic/block", bearer, `{"dc":"idc-a"}`)
		if status != 409 || reasonOf(t, body) != "LAST_DC" {
			t.Fatalf("blocking the last dc: %d %s", status, body)
		}
		status, _, body = call(t, a.srv.URL, "POST", "/v1/traffic/switch", bearer, `{"dc":"idc-b"}`)
		if status != 409 || reasonOf(t, body) != "DC_BLOCKED" {
			t.Fatalf("switching to a blocked dc: %d %s", status, body)
		}
		if after := a.revisions(); !maps.Equal(before, after) {
			t.Fatalf("refused requests changed etcd")
		}
	})
}

func apiWritesGoToTheLeader(t *testing.T, e *env) {
	a := newAPIEnv(t, e, noHooks)
	follower := a.start(testConfig("c2"), noHooks)
	fsrv := serveAPI(t, follower.Controller)
	before := a.revisions()
	status, hdr, body := call(t, fsrv.URL, "POST", "/v1/switchover?x=1", "Bearer "+token, `{"topic":"orders","to":"idc-b"}`)
	if status != http.StatusTemporaryRedirect || hdr.Get("Location") != "http://c1.invalid:1/v1/switchover?x=1" || reasonOf(t, body) != "NOT_LEADER" {
		t.Fatalf("write to a follower: %d Location=%q %s", status, hdr.Get("Location"), body)
	}
	if status, _, _ := call(t, fsrv.URL, "POST", "/v1/switchover", "Bearer wrong", `{}`); status != 401 {
		t.Fatalf("unauthenticated write to a follower: %d", status)
	}
	status, _, body = call(t, fsrv.URL, "GET", "/v1/status", "Bearer "+token, "")
	var st controller.Status
	if status != 200 || json.Unmarshal(body, &st) != nil || st.Leader == nil || st.Leader.ID != "c1" || st.Controller != "c2" {
		t.Fatalf("status from a follower: %d %s", status, body)
	}
	if after := a.revisions(); !maps.Equal(before, after) {
		t.Fatal("a redirected write changed etcd")
	}

	// A candidate of a cluster where nobody leads answers 503.
	lonely, err := controller.New(testConfig("c3"), controller.Deps{
		Store: meta.New(a.cli, meta.Options{Prefix: "/test/lonely/"}), Brokers: a.brokers})
	if err != nil {
		t.Fatal(err)
	}
	status, hdr, body = call(t, serveAPI(t, lonely).URL, "POST", "/v1/traffic/block", "Bearer "+token, `{"dc":"idc-a"}`)
	if status != 503 || reasonOf(t, body) != "NOT_LEADER" || hdr.Get("Retry-After") == "" {
		t.Fatalf("write without a leader: %d %s", status, body)
	}
}

func apiSwitchoverStatusAuditAndTraffic(t *testing.T, e *env) {
	a := newAPIEnv(t, e, noHooks)
	bearer := "Bearer " + token
	a.brokers.SetConsumerOffset(addr(dcA, "b0"), "billing", topic, 0, 4)
	a.brokers.SetConsumerOffset(addr(dcA, "b0"), "billing", topic, 2, 30)

	status, _, body := call(t, a.srv.URL, "POST", "/v1/switchover", bearer, `{"topic":"orders","to":"idc-b","actor":"alice","reason":"drill"}`)
	var rep controller.APIReport
	if status != 200 || json.Unmarshal(body, &rep) != nil || len(rep.Transitions) != 1 {
		t.Fatalf("switchover: %d %s", status, body)
	}
	if o := rep.Transitions[0]; o.Outcome.Outcome != controller.OutcomeOK || o.After.Primary != dcB || o.After.Epoch != 3 || o.PauseSeconds <= 0 {
		t.Fatalf("switchover outcome %+v", o)
	}
	a.setQueues(dcA, 10, 20, 30, 45)
	a.brokers.SetOutOfSync(addr(dcB, "b1"), topic, "idc-c")
	a.downReplicaSet("idc-d", "set-d", "d0", "d1")
	etcdtest.Eventually(t, wait, func() bool {
		st, err := a.c.Status(a.ctx())
		return err == nil && slices.ContainsFunc(st.DCs, func(d controller.DCStatus) bool {
			return d.Name == "idc-d" && len(d.ReplicaSets) == 1 && len(d.Alive) == 0
		})
	}, "the status does not show idc-d's replica set")

	status, _, body = call(t, a.srv.URL, "GET", "/v1/status", bearer, "")
	var st controller.Status
	if status != 200 || json.Unmarshal(body, &st) != nil {
		t.Fatalf("status: %d %s", status, body)
	}
	if st.Leader == nil || st.Leader.ID != "c1" || len(st.Ordered) != 1 || st.Ordered[0].Primary != dcB || st.Ordered[0].Epoch != 3 || st.Ordered[0].Home != dcA {
		t.Fatalf("status %s", body)
	}
	if !slices.Equal(st.Ordered[0].OutOfSync, []string{"idc-c"}) {
		t.Fatalf("out of sync %v, want idc-c (reported by idc-b's b1)", st.Ordered[0].OutOfSync)
	}
	lag := map[string]int64{}
	for _, l := range st.Ordered[0].Lag {
		lag[l.DC+"/"+string(rune('0'+l.Queue))] = l.Messages
	}
	// idc-b leads at 10,20,30,40; idc-a's copy of queue 3 is ahead (45),
	// which counts as no lag, not negative.
	if len(lag) != 8 || lag["idc-a/0"] != 0 || lag["idc-a/3"] != 0 || lag["idc-c/0"] != 10 || lag["idc-c/3"] != 40 {
		t.Fatalf("replication lag %v", lag)
	}
	// The switchover handed idc-a's offsets over to idc-b: both DCs' lag.
	if len(st.ConsumerLag) != 2 || st.ConsumerLag[0] != (controller.ConsumerLag{Group: "billing", Topic: topic, DC: dcA, Messages: 6}) ||
		st.ConsumerLag[1] != (controller.ConsumerLag{Group: "billing", Topic: topic, DC: dcB, Messages: 6}) {
		t.Fatalf("consumer lag %+v", st.ConsumerLag)
	}
	dcs := map[string]controller.DCStatus{}
	for _, d := range st.DCs {
		dcs[d.Name] = d
	}
	if len(dcs[dcA].Alive) != 2 || len(dcs["idc-d"].Alive) != 0 || dcs["idc-d"].DownSince.IsZero() || dcs["idc-c"].State != meta.DCDown || dcs[dcB].Down {
		t.Fatalf("dcs %+v", st.DCs)
	}
	// Every slot of the placement is a replica set: idc-a's brokers are
	// alone in theirs; idc-d's set of two, both down now, was led by d0
	// in term 1 with d1 in sync.
	alone := func(b string) controller.ReplicaSetStatus {
		return controller.ReplicaSetStatus{Set: b, Leader: b, LeaderLive: true, Standbys: []controller.StandbyStatus{}}
	}
	if got, want := dcs[dcA].ReplicaSets, []controller.ReplicaSetStatus{alone("b0"), alone("b1")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("idc-a replica sets %+v, want %+v", got, want)
	}
	want := []controller.ReplicaSetStatus{{Set: "set-d", Leader: "d0", Term: 1, Standbys: []controller.StandbyStatus{{Name: "d1", InSync: true}}}}
	if got := dcs["idc-d"].ReplicaSets; !reflect.DeepEqual(got, want) {
		t.Fatalf("idc-d replica sets %+v, want %+v", got, want)
	}
	if len(st.Etcd) != 3 || !st.Etcd[0].Reachable {
		t.Fatalf("etcd members %+v", st.Etcd)
	}

	status, _, body = call(t, a.srv.URL, "GET", "/v1/audit?limit=1", bearer, "")
	var audit struct{ Records []controller.AuditRecord }
	if status != 200 || json.Unmarshal(body, &audit) != nil || len(audit.Records) != 1 ||
		audit.Records[0].Kind != "switchover" || audit.Records[0].Actor != "alice" || audit.Records[0].Reason != "drill" {
		t.Fatalf("audit: %d %s", status, body)
	}

	for _, r := range []struct{ path, body string }{
		{"/v1/traffic/weights", `{"weights":{"idc-a":70,"idc-b":30}}`},
		{"/v1/traffic/block", `{"dc":"idc-d"}`},
		{"/v1/traffic/block", `{"dc":"idc-d"}`},
		{"/v1/traffic/unblock", `{"dc":"idc-d"}`},
		{"/v1/traffic/block", `{"dc":"idc-c"}`},
	} {
		if status, _, body := call(t, a.srv.URL, "POST", r.path, bearer, r.body); status != 200 {
			t.Fatalf("%s %s: %d %s", r.path, r.body, status, body)
		}
	}
	tr, _, err := a.store.GetTraffic(a.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if tr.Weights["idc-a"] != 70 || tr.Weights["idc-b"] != 30 || len(tr.BlockedDCs) != 1 || tr.BlockedDCs[0] != "idc-c" {
		t.Fatalf("traffic %+v", tr)
	}

	// All traffic to idc-a: weights, and orders switched back.
	status, _, body = call(t, a.srv.URL, "POST", "/v1/traffic/switch", bearer, `{"dc":"idc-a"}`)
	if status != 200 || json.Unmarshal(body, &rep) != nil || len(rep.Transitions) != 1 || rep.Traffic == nil {
		t.Fatalf("traffic switch: %d %s", status, body)
	}
	tr, _, _ = a.store.GetTraffic(a.ctx())
	if tr.Weights["idc-a"] != 100 || tr.Weights["idc-b"] != 0 || tr.Weights["idc-d"] != 0 {
		t.Fatalf("traffic after switch %+v", tr)
	}
	if o := a.ordered(); o.Primary != dcA || o.Epoch != 5 {
		t.Fatalf("orders after the traffic switch %+v", o)
	}
	before := a.revisions()
	status, _, body = call(t, a.srv.URL, "POST", "/v1/traffic/switch", bearer, `{"dc":"idc-a"}`)
	if status != 200 || json.Unmarshal(body, &rep) != nil || rep.Changed || len(rep.Transitions) != 0 {
		t.Fatalf("a repeated traffic switch: %d %s", status, body)
	}
	if after := a.revisions(); !maps.Equal(before, after) {
		t.Fatal("a traffic switch with nothing to change wrote to etcd")
	}
	var kinds []string
	for _, r := range a.audit() {
		kinds = append(kinds, r.Kind)
	}
	if want := "switchover traffic-weights traffic-block traffic-unblock traffic-block traffic-switch switchover"; strings.Join(kinds, " ") != want {
		t.Fatalf("audit kinds %q, want %q", strings.Join(kinds, " "), want)
	}
}

func TestControllerAPIRefusesAnEmptyToken(t *testing.T) {
	c, err := controller.New(testConfig("c"), controller.Deps{Store: meta.New(nil, meta.Options{}), Brokers: nil})
	if err == nil {
		_, err = controller.NewAPI(c, "")
	}
	if !errors.Is(err, controller.ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	c, err = controller.New(testConfig("c"), controller.Deps{Store: meta.New(nil, meta.Options{}), Brokers: noBrokers{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.NewAPI(c, ""); !errors.Is(err, controller.ErrInvalidConfig) {
		t.Fatalf("empty token: %v", err)
	}
}

type noBrokers struct{ controller.BrokerOps }

// downReplicaSet registers a replica set of two brokers in dc, leader
// then standby, writes its leader record with the standby in sync, and
// stops both (their liveness records go; registrations and record stay).
func (e *env) downReplicaSet(dc, set, leader, standby string) {
	e.t.Helper()
	l, err := e.cli.Grant(e.ctx(), 60)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, b := range []string{leader, standby} {
		if err := e.store.PutAlive(e.ctx(), l.ID, meta.Alive{Name: b, DC: dc, Address: addr(dc, b), Started: time.Now(), Set: set}); err != nil {
			e.t.Fatal(err)
		}
	}
	rec, rev, err := e.store.CreateReplicaSet(e.ctx(), dc, set, leader)
	if err != nil {
		e.t.Fatal(err)
	}
	e.must(e.store.SetReplicaSetInSync(e.ctx(), rec, rev, []string{standby}, standby+" rejoined: it holds every record appended before the leader began waiting for it"))
	if _, err := e.cli.Revoke(e.ctx(), l.ID); err != nil {
		e.t.Fatal(err)
	}
}
