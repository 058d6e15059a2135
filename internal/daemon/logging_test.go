package daemon_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/leakcheck"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/syncbuf"
)

// TestMain checks for leaked goroutines.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

// logBuffer is a log destination shared by a daemon's goroutines.
type logBuffer struct{ syncbuf.Buffer }

func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// runDaemon runs a daemon with a JSON logger until do returns, and returns
// what it logged.
func runDaemon(t *testing.T, run func(context.Context, daemon.Deps) error, do func(daemon.Endpoints)) []map[string]any {
	t.Helper()
	var logs logBuffer
	logger, err := logging.New(logging.Config{Format: "json", Level: "debug"}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan daemon.Endpoints, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, daemon.Deps{Logger: logger, Ready: func(e daemon.Endpoints) { ready <- e }}) }()
	select {
	case e := <-ready:
		do(e)
	case err := <-done:
		t.Fatalf("daemon ended before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
	return logs.lines(t)
}

// checkFields checks that every line names the component and the site.
func checkFields(t *testing.T, lines []map[string]any, component, site string) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("nothing logged")
	}
	for _, l := range lines {
		if l["component"] != component || l["site"] != site {
			t.Errorf("line %v: want component %q, site %q", l, component, site)
		}
	}
}

func TestNameserverLogFields(t *testing.T) {
	pc := daemon.DefaultNameserverProcess()
	pc.Listen, pc.MetricsListen, pc.Nameserver.DC = "127.0.0.1:0", "127.0.0.1:0", "idc-b"
	lines := runDaemon(t, func(ctx context.Context, d daemon.Deps) error { return daemon.RunNameserver(ctx, pc, d) }, func(daemon.Endpoints) {})
	checkFields(t, lines, "nameserver", "idc-b")
}

// TestBrokerLogFields: a broker's lines name it; a failed send is logged
// under its message's id.
func TestBrokerLogFields(t *testing.T) {
	pc := daemon.DefaultBrokerProcess()
	pc.Listen, pc.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	pc.Broker.Name, pc.Broker.DC, pc.Broker.DataDir = "broker-b-0", "idc-b", t.TempDir()
	run := func(ctx context.Context, d daemon.Deps) error {
		return daemon.RunBroker(ctx, pc, daemon.BrokerMeta{}, d)
	}
	lines := runDaemon(t, run, func(e daemon.Endpoints) {
		cc, err := grpc.NewClient(e.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = brokerpb.NewBrokerClient(cc).Send(ctx, &brokerpb.SendRequest{Topic: "no-such-topic", QueueId: -1,
			Messages: []*brokerpb.MessageInput{{Id: "msg-42", Body: []byte("x")}}})
		if err == nil {
			t.Fatal("send to an unknown topic succeeded")
		}
	})
	checkFields(t, lines, "broker", "idc-b")
	found := false
	for _, l := range lines {
		found = found || (l["msg"] == "call failed" && l["trace_id"] == "msg-42" && l["broker"] == "broker-b-0")
	}
	if !found {
		t.Errorf("no \"call failed\" line with trace_id msg-42 and the broker's name in %v", lines)
	}
}
