package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/leakcheck"
	"github.com/duomq/duomq/internal/rpcerr"
	"github.com/duomq/duomq/internal/testcluster"
)

// TestMain checks for leaked goroutines (internal/leakcheck says which
// HTTP keep-alive goroutines it ignores).
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

const (
	dcA = testcluster.DCA
	dcB = testcluster.DCB
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// send sends one message per body and returns the results.
func send(t testing.TB, px proxypb.ProxyClient, topic string, msgs ...*proxypb.Message) []*proxypb.SendResult {
	t.Helper()
	res, err := px.Send(testCtx(t), &proxypb.SendRequest{Topic: topic, Messages: msgs})
	if err != nil {
		t.Fatalf("send to %s: %v", topic, err)
	}
	if len(res.Results) != len(msgs) {
		t.Fatalf("send to %s: %d results for %d messages", topic, len(res.Results), len(msgs))
	}
	return res.Results
}

func body(s string) *proxypb.Message { return &proxypb.Message{Body: []byte(s)} }

// receive makes one receive call from the earliest position.
func receive(t testing.TB, px proxypb.ProxyClient, group, topic string, max int32, wait, invisible time.Duration) []*proxypb.ReceivedMessage {
	t.Helper()
	res, err := px.Receive(testCtx(t), &proxypb.ReceiveRequest{
		Group: group, Topic: topic, MaxMessages: max, WaitMillis: wait.Milliseconds(), InvisibleMillis: invisible.Milliseconds(),
		ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST, ClientId: "test-consumer",
	})
	if err != nil {
		t.Fatalf("receive %s/%s: %v", group, topic, err)
	}
	return res.Messages
}

// receiveAcked receives and acks until n messages arrived or the time is
// up, and returns their bodies.
func receiveAcked(t testing.TB, px proxypb.ProxyClient, group, topic string, n int, within time.Duration) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(within)
	for len(out) < n && time.Now().Before(deadline) {
		for _, m := range receive(t, px, group, topic, 32, 200*time.Millisecond, 30*time.Second) {
			out = append(out, string(m.Message.Body))
			if _, err := px.Ack(testCtx(t), &proxypb.AckRequest{Group: group, Topic: topic, ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
	return out
}

// wantStatus checks an error's code and ErrorInfo reason, and that its
// message contains every fragment.
func wantStatus(t testing.TB, err error, code codes.Code, reason string, fragments ...string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || rpcerr.Reason(err) != reason {
		t.Fatalf("got %v (reason %q), want %v %s", err, rpcerr.Reason(err), code, reason)
	}
	for _, f := range fragments {
		if !strings.Contains(st.Message(), f) {
			t.Fatalf("error %q does not mention %q", st.Message(), f)
		}
	}
	return st
}

func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// stored counts the messages of topic on every broker of dc.
func stored(t testing.TB, c *testcluster.Cluster, dc, topic string, queues int) int64 {
	t.Helper()
	var n int64
	for i := range c.Brokers(dc) {
		bc := c.BrokerClient(t, dc, i)
		for q := range queues {
			res, err := bc.GetQueueOffsets(testCtx(t), &brokerpb.GetQueueOffsetsRequest{Topic: topic, QueueId: uint32(q)})
			if err != nil {
				t.Fatalf("queue offsets of %s/%d on %s broker %d: %v", topic, q, dc, i, err)
			}
			n += res.MaxOffset - res.MinOffset
		}
	}
	return n
}

// writtenIn counts the messages of topic that clients wrote in dc: those
// its replicator copied from another DC (FlagReplicated) are left out.
func writtenIn(t testing.TB, c *testcluster.Cluster, dc, topic string, queues int) int64 {
	t.Helper()
	var n int64
	for i := range c.Brokers(dc) {
		bc := c.BrokerClient(t, dc, i)
		for q := range queues {
			for off := int64(0); ; {
				res, err := bc.Pull(testCtx(t), &brokerpb.PullRequest{Topic: topic, QueueId: uint32(q), Offset: off, MaxMessages: 1024})
				if err != nil {
					t.Fatalf("pull %s/%d on %s broker %d: %v", topic, q, dc, i, err)
				}
				for _, m := range res.GetMessages() {
					if m.GetFlags()&commitlog.FlagReplicated == 0 {
						n++
					}
				}
				if res.GetNextOffset() == off {
					break
				}
				off = res.GetNextOffset()
			}
		}
	}
	return n
}

// storedExactly waits until want messages of topic are visible on dc's
// brokers (their dispatch lags the send a little), then checks that no
// more appear.
func storedExactly(t testing.TB, c *testcluster.Cluster, dc, topic string, queues int, want int64) {
	t.Helper()
	testcluster.Eventually(t, func() bool { return stored(t, c, dc, topic, queues) >= want }, "%d messages of %s in %s", want, topic, dc)
	time.Sleep(100 * time.Millisecond)
	if n := stored(t, c, dc, topic, queues); n != want {
		t.Fatalf("%d messages of %s stored in %s, want %d", n, topic, dc, want)
	}
}

// metric returns the value of the series whose line starts with prefix
// (name and labels), or -1 when absent.
func metric(t testing.TB, url, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}

func group(name string, topics ...string) meta.Group {
	g := meta.Group{Name: name}
	for _, tp := range topics {
		g.Subscriptions = append(g.Subscriptions, meta.Subscription{Topic: tp})
	}
	return g
}

func bodies(n int, prefix string) []*proxypb.Message {
	out := make([]*proxypb.Message, n)
	for i := range out {
		out[i] = body(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}
