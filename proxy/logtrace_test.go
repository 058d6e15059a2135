package proxy_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/syncbuf"
	"github.com/duomq/duomq/internal/testcluster"
)

// syncBuffer is a log destination shared by every component's goroutines.
type syncBuffer struct{ syncbuf.Buffer }

// lines returns the JSON lines logged so far whose fields include want.
func (b *syncBuffer) lines(t *testing.T, want map[string]string) []map[string]any {
	t.Helper()
	raw := b.String()
	var out []map[string]any
	for _, line := range strings.Split(raw, "\n") {
		var m map[string]any
		if line == "" || json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && m[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// TestTraceIDInLogs: a failed call is logged with component, site and
// trace_id: the caller's x-duomq-trace-id (passed on to the broker the
// proxy calls), else the id of the message the request carries.
func TestTraceIDInLogs(t *testing.T) {
	var logs syncBuffer
	logger, err := logging.New(logging.Config{Format: "json", Level: "debug"}, &logs)
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.New(t, testcluster.Options{Logger: logger})
	c.CreateTopic(t, meta.Topic{Name: "jobs", Queues: 1})
	c.CreateGroup(t, group("workers", "jobs"))
	px := c.ProxyClient(t, dcA)

	// The proxy refuses a send to an unknown topic: no header, so the
	// message id is the trace id.
	if _, err := px.Send(testCtx(t), &proxypb.SendRequest{Topic: "nope", Messages: []*proxypb.Message{{Id: "msg-trace-1", Body: []byte("x")}}}); err == nil {
		t.Fatal("send to an unknown topic succeeded")
	}
	want := map[string]string{"msg": "call failed", "component": "proxy", "site": dcA, "trace_id": "msg-trace-1"}
	if len(logs.lines(t, want)) == 0 {
		t.Fatalf("no line with %v in:\n%s", want, logs.String())
	}

	// A settled receipt acked again: the broker refuses it and logs under
	// the caller's trace id, which the proxy passed on.
	send(t, px, "jobs", body("job"))
	var got []*proxypb.ReceivedMessage
	testcluster.Eventually(t, func() bool {
		got = receive(t, px, "workers", "jobs", 1, 500*time.Millisecond, 30*time.Second)
		return len(got) == 1
	}, "a delivery")
	ack := &proxypb.AckRequest{Group: "workers", Topic: "jobs", ReceiptHandle: got[0].ReceiptHandle}
	if _, err := px.Ack(testCtx(t), ack); err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(testCtx(t), logging.TraceHeader, "client-trace-7")
	if _, err := px.Ack(ctx, ack); err == nil {
		t.Fatal("a settled receipt was acked again")
	}
	for _, comp := range []string{"proxy", "broker"} {
		want := map[string]string{"msg": "call failed", "component": comp, "site": dcA, "trace_id": "client-trace-7"}
		if len(logs.lines(t, want)) == 0 {
			t.Errorf("no line with %v", want)
		}
	}
}
