package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/client"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
)

// TestIntegration runs the SDK against one in-process topology (etcd,
// nameservers, brokers and proxies of two DCs); each subtest uses its own
// topics and groups.
func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole topology")
	}
	cl := testcluster.New(t, testcluster.Options{})
	h := &harness{cl: cl}
	t.Run("RoundTrip", h.roundTrip)
	t.Run("TagFilter", h.tagFilter)
	t.Run("Batch", h.batch)
	t.Run("Async", h.async)
	t.Run("OrderedPerKey", h.orderedPerKey)
	t.Run("RetryDoesNotDuplicate", h.retryDoesNotDuplicate)
	t.Run("PushRetryThenSuccess", h.pushRetryThenSuccess)
	t.Run("PushGracefulShutdown", h.pushGracefulShutdown)
	t.Run("Compression", h.compression)
	t.Run("IDCByIP", h.idcByIP)
	t.Run("Refusals", h.refusals)
	t.Run("DeadLetters", h.deadLetters)
	t.Run("Delayed", h.delayed)
}

type harness struct {
	cl *testcluster.Cluster
}

// client connects to dc's proxy; tune adjusts the configuration.
func (h *harness) client(t *testing.T, dc string, tune func(*client.Config), opts ...client.Option) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Proxy = h.cl.Proxy(dc)
	cfg.App = "it-" + t.Name()
	cfg.IDC.Sources = []string{client.SourceDefault}
	cfg.IDC.Default = dc
	cfg.HeartbeatInterval = 200 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	c, err := client.New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (h *harness) topic(t *testing.T, name string, queues int) {
	t.Helper()
	h.cl.CreateTopic(t, meta.Topic{Name: name, Queues: queues})
}

func (h *harness) group(t *testing.T, name string, topic string, tune func(*meta.Group)) {
	t.Helper()
	g := meta.Group{Name: name, Subscriptions: []meta.Subscription{{Topic: topic, Tags: "*"}}}
	if tune != nil {
		tune(&g)
	}
	h.cl.CreateGroup(t, g)
}

// receiveAll receives and acks until want messages arrived or nothing
// came for idle, and returns them in the order received.
func receiveAll(t *testing.T, sc *client.SimpleConsumer, want int, idle time.Duration) []*client.MessageView {
	t.Helper()
	var out []*client.MessageView
	last := time.Now()
	for len(out) < want && time.Since(last) < idle {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		ms, err := sc.Receive(ctx, 32, 30*time.Second)
		cancel()
		if err != nil && !errors.Is(err, client.ErrTimeout) {
			t.Fatalf("receive: %v", err)
		}
		for _, m := range ms {
			if err := sc.Ack(context.Background(), m); err != nil {
				t.Fatalf("ack %s: %v", m.ID, err)
			}
			out = append(out, m)
		}
		if len(ms) > 0 {
			last = time.Now()
		}
	}
	return out
}

func bodies(ms []*client.MessageView) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Body)
	}
	return out
}

func (h *harness) roundTrip(t *testing.T) {
	h.topic(t, "it-rt", 4)
	h.group(t, "it-rt-g", "it-rt", nil)
	c := h.client(t, testcluster.DCB, nil)
	p := c.NewProducer()
	defer p.Close()
	var want []string
	for i := range 20 {
		body := fmt.Sprintf("rt-%d", i)
		m := &client.Message{Topic: "it-rt", Body: []byte(body), Keys: []string{"k" + strconv.Itoa(i)}, Properties: map[string]string{"trace": "x"}}
		r, err := p.Send(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != m.ID || r.DC != testcluster.DCB || r.Topic != "it-rt" {
			t.Fatalf("receipt %+v", r)
		}
		want = append(want, body)
	}
	sc, err := c.NewSimpleConsumer("it-rt-g", "it-rt", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	if err != nil {
		t.Fatal(err)
	}
	got := receiveAll(t, sc, 20, 10*time.Second)
	if b := bodies(got); !sameSet(b, want) {
		t.Fatalf("received %v, want %v", b, want)
	}
	m := got[0]
	if m.DC != testcluster.DCB || m.BornDC != testcluster.DCB || m.Properties["trace"] != "x" || len(m.Keys) != 1 || m.StoreTime.IsZero() {
		t.Fatalf("message view %+v", m)
	}
}

func (h *harness) tagFilter(t *testing.T) {
	h.topic(t, "it-tag", 2)
	h.group(t, "it-tag-g", "it-tag", nil)
	c := h.client(t, testcluster.DCA, nil)
	p := c.NewProducer()
	for i := range 10 {
		tag := []string{"paid", "refunded", "other"}[i%3]
		if _, err := p.Send(context.Background(), &client.Message{Topic: "it-tag", Tag: tag, Body: []byte(tag + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	sc, _ := c.NewSimpleConsumer("it-tag-g", "it-tag", "paid || refunded", client.WithConsumeFrom(client.ConsumeFromEarliest))
	got := receiveAll(t, sc, 7, 5*time.Second)
	for _, m := range got {
		if m.Tag != "paid" && m.Tag != "refunded" {
			t.Fatalf("tag %q passed the filter", m.Tag)
		}
	}
	if len(got) != 7 {
		t.Fatalf("%d messages passed the filter, want 7", len(got))
	}
}

func (h *harness) batch(t *testing.T) {
	h.topic(t, "it-batch", 4)
	h.group(t, "it-batch-g", "it-batch", nil)
	c := h.client(t, testcluster.DCA, nil)
	var msgs []*client.Message
	var want []string
	// Over MaxBatch, so the batch is split into two requests.
	n := client.MaxBatch + 6
	for i := range n {
		msgs = append(msgs, &client.Message{Topic: "it-batch", Body: []byte("b" + strconv.Itoa(i))})
		want = append(want, "b"+strconv.Itoa(i))
	}
	rs, err := c.NewProducer().SendBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.ID != msgs[i].ID || r.DC != testcluster.DCA {
			t.Fatalf("receipt %d: %+v", i, r)
		}
	}
	sc, _ := c.NewSimpleConsumer("it-batch-g", "it-batch", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	if got := bodies(receiveAll(t, sc, n, 20*time.Second)); !sameSet(got, want) {
		t.Fatalf("received %d of %d", len(got), n)
	}
}

func (h *harness) async(t *testing.T) {
	h.topic(t, "it-async", 4)
	h.group(t, "it-async-g", "it-async", nil)
	c := h.client(t, testcluster.DCA, nil)
	p := c.NewProducer()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	for i := range 100 {
		wg.Add(1)
		p.SendAsync(context.Background(), &client.Message{Topic: "it-async", Body: []byte(strconv.Itoa(i))}, func(r client.SendReceipt, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("async send: %v", err)
				return
			}
			mu.Lock()
			ids[r.ID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	p.Close()
	if len(ids) != 100 {
		t.Fatalf("%d distinct ids for 100 sends", len(ids))
	}
	sc, _ := c.NewSimpleConsumer("it-async-g", "it-async", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	if got := receiveAll(t, sc, 100, 10*time.Second); len(got) != 100 {
		t.Fatalf("received %d of 100", len(got))
	}
}

// orderedPerKey: producers in both DCs send their keys concurrently to an
// ordered topic; every key's messages arrive in the order sent.
func (h *harness) orderedPerKey(t *testing.T) {
	h.cl.CreateTopic(t, meta.Topic{Name: "it-ord", Queues: 4, Ordered: true, Primary: testcluster.DCA, Replication: meta.ReplicationAsync})
	h.group(t, "it-ord-g", "it-ord", func(g *meta.Group) { g.Ordered = true })
	const keys, perKey = 6, 40
	var wg sync.WaitGroup
	for k := range keys {
		dc := h.cl.DCs()[k%2]
		c := h.client(t, dc, nil)
		wg.Go(func() {
			p := c.NewProducer()
			for i := range perKey {
				key := "key-" + strconv.Itoa(k)
				if _, err := p.Send(context.Background(), &client.Message{Topic: "it-ord", ShardingKey: key, Body: []byte(fmt.Sprintf("%s:%d", key, i))}); err != nil {
					t.Errorf("ordered send from %s: %v", dc, err)
					return
				}
			}
		})
	}
	wg.Wait()
	c := h.client(t, testcluster.DCA, nil)
	sc, _ := c.NewSimpleConsumer("it-ord-g", "it-ord", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	got := receiveAll(t, sc, keys*perKey, 10*time.Second)
	next := map[string]int{}
	for _, m := range got {
		key, seq, _ := strings.Cut(string(m.Body), ":")
		n, _ := strconv.Atoi(seq)
		if n != next[key] {
			t.Fatalf("key %s: got #%d, want #%d", key, n, next[key])
		}
		if m.ShardingKey != key {
			t.Fatalf("sharding key %q on a message of %s", m.ShardingKey, key)
		}
		next[key]++
	}
	if len(got) != keys*perKey {
		t.Fatalf("received %d of %d", len(got), keys*perKey)
	}
}

// retryDoesNotDuplicate loses the reply of a stored send (the interceptor
// reports UNAVAILABLE after the proxy answered); the retry finds the id
// stored, and one copy is delivered.
func (h *harness) retryDoesNotDuplicate(t *testing.T) {
	h.topic(t, "it-dup", 2)
	h.group(t, "it-dup-g", "it-dup", nil)
	var sends atomic.Int32
	lose := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if method == proxypb.Proxy_Send_FullMethodName && sends.Add(1) == 1 && err == nil {
			return status.Error(codes.Unavailable, "connection reset after the send was stored")
		}
		return err
	})
	c := h.client(t, testcluster.DCA, nil, client.WithDialOptions(lose))
	m := &client.Message{Topic: "it-dup", Body: []byte("only once")}
	r, err := c.NewProducer().Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if sends.Load() != 2 || !r.Duplicate || r.ID != m.ID {
		t.Fatalf("%d attempts, receipt %+v: want a second attempt answered as a duplicate of %s", sends.Load(), r, m.ID)
	}
	sc, _ := c.NewSimpleConsumer("it-dup-g", "it-dup", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	got := receiveAll(t, sc, 2, 2*time.Second)
	if len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("received %d copies", len(got))
	}
}

func (h *harness) pushRetryThenSuccess(t *testing.T) {
	h.topic(t, "it-push", 2)
	h.group(t, "it-push-g", "it-push", nil)
	c := h.client(t, testcluster.DCA, nil)
	var mu sync.Mutex
	var seen []int32
	pc, err := c.NewPushConsumer("it-push-g", "it-push", "*", func(_ context.Context, m *client.MessageView) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m.ReconsumeTimes)
		if len(seen) == 1 {
			return errors.New("not yet")
		}
		return nil
	}, 4, client.WithConsumeFrom(client.ConsumeFromEarliest), client.WithReceiveWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := c.NewProducer().Send(context.Background(), &client.Message{Topic: "it-push", Body: []byte("retry me")}); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 2 }, "redelivery after a handler error")
	pc.Close()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []int32{0, 1}) {
		t.Fatalf("reconsume counts %v, want [0 1]", seen)
	}
}

// pushGracefulShutdown closes a push consumer while handlers run: Close
// waits for them and acks their messages, so nothing is delivered again.
func (h *harness) pushGracefulShutdown(t *testing.T) {
	h.topic(t, "it-drain", 2)
	h.group(t, "it-drain-g", "it-drain", nil)
	c := h.client(t, testcluster.DCA, nil)
	p := c.NewProducer()
	for i := range 4 {
		if _, err := p.Send(context.Background(), &client.Message{Topic: "it-drain", Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	started := make(chan struct{}, 4)
	var finished atomic.Int32
	pc, err := c.NewPushConsumer("it-drain-g", "it-drain", "*", func(ctx context.Context, m *client.MessageView) error {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		finished.Add(1)
		return ctx.Err()
	}, 4, client.WithConsumeFrom(client.ConsumeFromEarliest), client.WithReceiveWait(200*time.Millisecond),
		client.WithInvisibleDuration(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	pc.Close()
	n := finished.Load()
	if n == 0 || len(started) != int(n)-1 {
		t.Fatalf("Close returned with %d handlers started and %d finished", len(started)+1, n)
	}
	// Unacked messages would come back after their 2s invisibility.
	time.Sleep(2500 * time.Millisecond)
	sc, _ := c.NewSimpleConsumer("it-drain-g", "it-drain", "*")
	rest := receiveAll(t, sc, 4, 2*time.Second)
	if int(n)+len(rest) != 4 {
		t.Fatalf("%d handled before Close, %d delivered after: want 4 in all, none twice", n, len(rest))
	}
	for _, m := range rest {
		if m.ReconsumeTimes != 0 {
			t.Fatalf("message %s delivered again after a graceful close", m.ID)
		}
	}
}

// compression: a large body is stored compressed and consumed as sent.
func (h *harness) compression(t *testing.T) {
	h.topic(t, "it-zstd", 1)
	h.group(t, "it-zstd-g", "it-zstd", nil)
	c := h.client(t, testcluster.DCA, nil)
	body := bytes.Repeat([]byte("a compressible body "), 4000)
	r, err := c.NewProducer().Send(context.Background(), &client.Message{Topic: "it-zstd", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	stored := h.lookup(t, testcluster.DCA, r.ID)
	if stored.GetFlags()&commitlog.FlagCompressed == 0 || len(stored.GetBody()) >= len(body)/10 {
		t.Fatalf("stored flags %#x with %d bytes for a %d byte body", stored.GetFlags(), len(stored.GetBody()), len(body))
	}
	sc, _ := c.NewSimpleConsumer("it-zstd-g", "it-zstd", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	got := receiveAll(t, sc, 1, 5*time.Second)
	if len(got) != 1 || !bytes.Equal(got[0].Body, body) {
		t.Fatal("consumer did not get the body as sent")
	}
}

// lookup finds a stored message on a broker of dc (once indexed).
func (h *harness) lookup(t *testing.T, dc, id string) *brokerpb.Message {
	t.Helper()
	var found *brokerpb.Message
	testcluster.Eventually(t, func() bool {
		for i := range h.cl.Brokers(dc) {
			res, err := h.cl.BrokerClient(t, dc, i).LookupByID(context.Background(), &brokerpb.LookupByIDRequest{Id: id})
			if err == nil && len(res.GetMessages()) > 0 {
				found = res.GetMessages()[0]
				return true
			}
		}
		return false
	}, "message %s on a broker of %s", id, dc)
	return found
}

// idcByIP: a client configured with both DCs' proxies finds its IDC from
// an address in idc-b's CIDRs and talks to idc-b's proxy, which lists it.
func (h *harness) idcByIP(t *testing.T) {
	c := h.client(t, testcluster.DCA, func(cfg *client.Config) {
		cfg.Proxy = ""
		cfg.Proxies = map[string]string{testcluster.DCA: h.cl.Proxy(testcluster.DCA), testcluster.DCB: h.cl.Proxy(testcluster.DCB)}
		cfg.IDC.Sources = []string{client.SourceIP, client.SourceDefault}
		cfg.IDC.Default = testcluster.DCA
		cfg.IDC.ExtraAddresses = []string{"127.2.3.4"}
	})
	if c.IDC() != testcluster.DCB || c.IDCSource() != client.SourceIP || c.Target() != h.cl.Proxy(testcluster.DCB) {
		t.Fatalf("IDC %q from %q via %s", c.IDC(), c.IDCSource(), c.Target())
	}
	c.NewProducer()
	testcluster.Eventually(t, func() bool {
		cs, err := c.ListClients(context.Background())
		if err != nil {
			return false
		}
		for _, s := range cs {
			if s.ClientID == c.ID() {
				return s.IDC == testcluster.DCB && s.IDCSource == client.SourceIP && s.SDKVersion == client.Version && s.ProxyDC == testcluster.DCB
			}
		}
		return false
	}, "client listed by idc-b's proxy with IDC source ip")
}

func (h *harness) refusals(t *testing.T) {
	h.cl.CreateTopic(t, meta.Topic{Name: "it-small", Queues: 1, MaxMessageBytes: 1024})
	c := h.client(t, testcluster.DCA, nil)
	p := c.NewProducer()
	_, err := p.Send(context.Background(), &client.Message{Topic: "it-no-such-topic", Body: []byte("x")})
	if !errors.Is(err, client.ErrTopicNotFound) || !strings.Contains(err.Error(), "it-no-such-topic") {
		t.Fatalf("unknown topic: %v", err)
	}
	random := make([]byte, 3000)
	for i := range random {
		random[i] = byte(i*7919 + i/3)
	}
	_, err = p.Send(context.Background(), &client.Message{Topic: "it-small", Body: random})
	if !errors.Is(err, client.ErrMessageTooLarge) || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("oversize: %v", err)
	}
	sc, _ := c.NewSimpleConsumer("it-no-such-group", "it-small", "*")
	if _, err := sc.Receive(context.Background(), 1, time.Second); !errors.Is(err, client.ErrGroupNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
}

// deadLetters: a message failed past the group's retries is listed among
// its dead letters and re-driven to its topic.
func (h *harness) deadLetters(t *testing.T) {
	h.topic(t, "it-dlq", 1)
	h.group(t, "it-dlq-g", "it-dlq", func(g *meta.Group) { g.MaxRetries = 1 })
	c := h.client(t, testcluster.DCA, nil)
	m := &client.Message{Topic: "it-dlq", Body: []byte("poison")}
	if _, err := c.NewProducer().Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	pc, _ := c.NewPushConsumer("it-dlq-g", "it-dlq", "*", func(context.Context, *client.MessageView) error {
		attempts.Add(1)
		return errors.New("always fails")
	}, 1, client.WithConsumeFrom(client.ConsumeFromEarliest), client.WithReceiveWait(200*time.Millisecond))
	var dead []*client.MessageView
	testcluster.Eventually(t, func() bool {
		var err error
		dead, err = c.ListDeadLetters(context.Background(), "it-dlq-g", 10)
		return err == nil && len(dead) == 1
	}, "message in the dead letters")
	pc.Close()
	if string(dead[0].Body) != "poison" || attempts.Load() < 2 {
		t.Fatalf("dead letter %q after %d attempts", dead[0].Body, attempts.Load())
	}
	n, err := c.RedriveDeadLetters(context.Background(), "it-dlq-g", []string{dead[0].ID})
	if err != nil || n != 1 {
		t.Fatalf("redrive: %d, %v", n, err)
	}
	sc, _ := c.NewSimpleConsumer("it-dlq-g", "it-dlq", "*")
	got := receiveAll(t, sc, 1, 10*time.Second)
	if len(got) != 1 || string(got[0].Body) != "poison" {
		t.Fatalf("re-driven message not received: %v", bodies(got))
	}
}

// delayed: a message with DeliverAt is not delivered before that time.
func (h *harness) delayed(t *testing.T) {
	h.topic(t, "it-delay", 1)
	h.group(t, "it-delay-g", "it-delay", nil)
	c := h.client(t, testcluster.DCA, nil)
	at := time.Now().Add(1500 * time.Millisecond)
	if _, err := c.NewProducer().Send(context.Background(), &client.Message{Topic: "it-delay", Body: []byte("later"), DeliverAt: at}); err != nil {
		t.Fatal(err)
	}
	sc, _ := c.NewSimpleConsumer("it-delay-g", "it-delay", "*", client.WithConsumeFrom(client.ConsumeFromEarliest))
	got := receiveAll(t, sc, 1, 10*time.Second)
	if len(got) != 1 || string(got[0].Body) != "later" {
		t.Fatalf("delayed message not received: %v", bodies(got))
	}
	if now := time.Now(); now.Before(at) {
		t.Fatalf("delivered %v before its time", at.Sub(now))
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
