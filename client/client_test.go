package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/internal/etcdtest"
	"github.com/duomq/duomq/proxy/auth"
)

func TestSendRetryStoresOnce(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	// The first attempt is stored, then its reply is lost as UNAVAILABLE.
	f.failSend = func(n int) (error, bool) {
		if n == 1 {
			return status.Error(codes.Unavailable, "connection reset"), true
		}
		return nil, false
	}
	c := newTestClient(t, testConfig(addr))
	p := c.NewProducer()
	defer p.Close()
	m := &Message{Topic: "t", Body: []byte("once")}
	r, err := p.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Duplicate || r.ID != m.ID || m.ID == "" {
		t.Fatalf("receipt %+v for message id %q: want the original placement, marked duplicate", r, m.ID)
	}
	if n := f.storedCount("t"); n != 1 {
		t.Fatalf("%d copies stored", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 2 {
		t.Fatalf("%d attempts, want 2", len(f.sends))
	}
	for _, s := range f.sends {
		if !s.Idempotent || s.Messages[0].Id != m.ID {
			t.Fatalf("attempt idempotent=%v id=%q, want true and %q", s.Idempotent, s.Messages[0].Id, m.ID)
		}
	}
}

func TestSendRefusalsAreNotRetried(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	p := c.NewProducer()
	_, err := p.Send(context.Background(), &Message{Topic: "nope", Body: []byte("x")})
	if !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("err %v, want ErrTopicNotFound", err)
	}
	f.mu.Lock()
	n := len(f.sends)
	f.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d attempts of a refused send", n)
	}
}

func TestSendTooLargeRefusedBeforeSending(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	// Compressible to a few bytes, but the limit applies to the body as sent.
	_, err := c.NewProducer().Send(context.Background(), &Message{Topic: "t", Body: bytes.Repeat([]byte("x"), 5<<20)})
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("err %v", err)
	}
	if want := "limit of 4194304 bytes"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("error %q does not name the limit", err)
	}
	if f.storedCount("t") != 0 {
		t.Fatal("oversize message stored")
	}
}

func TestCallsAreSigned(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	cfg := testConfig(addr)
	cfg.AccessKey, cfg.SecretKey = "app-key", "s3cret"
	c := newTestClient(t, cfg)
	if _, err := c.NewProducer().Send(context.Background(), &Message{Topic: "t", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.metadata) == 0 {
		t.Fatal("no calls seen")
	}
	for _, md := range f.metadata {
		get := func(k string) string {
			if v := md.Get(k); len(v) == 1 {
				return v[0]
			}
			return ""
		}
		method := get(":method")
		if get(auth.MDAccessKey) != "app-key" || !auth.Verify("s3cret", "app-key", get(auth.MDTimestamp), method, get(auth.MDSignature)) {
			t.Fatalf("call %s: signature does not verify: %v", method, md)
		}
	}
}

func TestHeartbeatAnnouncesClient(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	p := c.NewProducer()
	if _, err := p.Send(context.Background(), &Message{Topic: "t", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewSimpleConsumer("g1", "t", "*"); err != nil {
		t.Fatal(err)
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool {
		hb := f.lastHeartbeat()
		return hb != nil && slices.Equal(hb.ProducerTopics, []string{"t"}) && slices.Equal(hb.ConsumerGroups, []string{"g1"})
	}, "heartbeat with topics and groups")
	hb := f.lastHeartbeat()
	if hb.ClientId != c.ID() || hb.App != "test-app" || hb.Idc != "idc-a" || hb.IdcSource != SourceDefault || hb.SdkVersion != Version || hb.Host == "" {
		t.Fatalf("heartbeat %+v", hb)
	}
	if c.ProxyDC() != "idc-a" {
		t.Fatalf("proxy DC %q", c.ProxyDC())
	}
}

func TestIDCByIPPicksOwnProxy(t *testing.T) {
	fa, addrA := newFakeProxy(t, "idc-a")
	fb, addrB := newFakeProxy(t, "idc-b")
	for _, f := range []*fakeProxy{fa, fb} {
		f.cidr["192.0.2.9"] = "idc-b"
	}
	cfg := testConfig("")
	cfg.Proxy = ""
	cfg.Proxies = map[string]string{"idc-a": addrA, "idc-b": addrB}
	cfg.IDC.Sources = []string{SourceIP, SourceDefault}
	cfg.IDC.ExtraAddresses = []string{"192.0.2.9"}
	c := newTestClient(t, cfg)
	if c.IDC() != "idc-b" || c.IDCSource() != SourceIP || c.Target() != addrB {
		t.Fatalf("IDC %q from %q via %s, want idc-b from ip via %s", c.IDC(), c.IDCSource(), c.Target(), addrB)
	}
	c.NewProducer()
	etcdtest.Eventually(t, 5*time.Second, func() bool { return fb.lastHeartbeat() != nil }, "heartbeat to idc-b's proxy")
	if fa.lastHeartbeat() != nil {
		t.Fatal("heartbeat went to the other IDC's proxy")
	}
}

func TestIDCUnknownWithSeveralProxies(t *testing.T) {
	cfg := testConfig("")
	cfg.Proxy = ""
	cfg.Proxies = map[string]string{"idc-a": "127.0.0.1:1", "idc-b": "127.0.0.1:2"}
	cfg.IDC.Sources = []string{SourceDefault}
	cfg.IDC.Default = ""
	if _, err := New(context.Background(), cfg); !errors.Is(err, ErrNoIDC) {
		t.Fatalf("err %v, want ErrNoIDC", err)
	}
}

func TestIDCLearnedFromSingleProxy(t *testing.T) {
	_, addr := newFakeProxy(t, "idc-b")
	cfg := testConfig(addr)
	cfg.IDC.Default = ""
	c := newTestClient(t, cfg)
	if c.IDC() != "" {
		t.Fatalf("IDC %q before any source gave one", c.IDC())
	}
	c.NewProducer()
	etcdtest.Eventually(t, 5*time.Second, func() bool { return c.IDC() == "idc-b" }, "IDC learned from the proxy")
	if c.IDCSource() != SourceProxy {
		t.Fatalf("source %q", c.IDCSource())
	}
}

func TestCompressionIsTransparent(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	body := bytes.Repeat([]byte("compress me "), 2000)
	if _, err := c.NewProducer().Send(context.Background(), &Message{Topic: "t", Body: body}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	wire := f.stored["t"][0].pb
	f.mu.Unlock()
	if !wire.Compressed || len(wire.Body) >= len(body) {
		t.Fatalf("stored compressed=%v with %d bytes", wire.Compressed, len(wire.Body))
	}
	sc, _ := c.NewSimpleConsumer("g", "t", "*", WithConsumeFrom(ConsumeFromEarliest))
	ms, err := sc.Receive(context.Background(), 10, 10*time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatalf("received %d: %v", len(ms), err)
	}
	if !bytes.Equal(ms[0].Body, body) {
		t.Fatal("consumer saw a different body")
	}
}

func TestBatchAndAsync(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	p := c.NewProducer()
	msgs := []*Message{{Topic: "t", Body: []byte("1")}, {Topic: "t2", Body: []byte("2")}, {Topic: "t", Body: []byte("3")}}
	rs, err := p.SendBatch(context.Background(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.ID != msgs[i].ID || r.Topic != msgs[i].Topic {
			t.Fatalf("receipt %d %+v for %+v", i, r, msgs[i])
		}
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 50 {
		wg.Add(1)
		p.SendAsync(context.Background(), &Message{Topic: "t", Body: []byte(fmt.Sprint(i))}, func(_ SendReceipt, err error) {
			if err != nil {
				failed.Add(1)
			}
			wg.Done()
		})
	}
	p.Close()
	wg.Wait()
	if failed.Load() != 0 || f.storedCount("t") != 52 {
		t.Fatalf("%d failed, %d stored", failed.Load(), f.storedCount("t"))
	}
	p.SendAsync(context.Background(), &Message{Topic: "t"}, func(_ SendReceipt, err error) {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("send after Close: %v", err)
		}
	})
}

func TestPushConsumerRetriesFailedHandler(t *testing.T) {
	_, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	if _, err := c.NewProducer().Send(context.Background(), &Message{Topic: "t", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int32
	pc, err := c.NewPushConsumer("g", "t", "*", func(_ context.Context, m *MessageView) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, m.ReconsumeTimes)
		if len(seen) == 1 {
			return errors.New("first try fails")
		}
		return nil
	}, 4, WithReceiveWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 2 }, "redelivery")
	pc.Close()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []int32{0, 1}) {
		t.Fatalf("reconsume counts %v, want [0 1]", seen)
	}
}

func TestPushConsumerCloseDrainsHandlers(t *testing.T) {
	f, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	for i := range 3 {
		if _, err := c.NewProducer().Send(context.Background(), &Message{Topic: "t", Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	started := make(chan struct{}, 3)
	var finished atomic.Int32
	pc, err := c.NewPushConsumer("g", "t", "*", func(ctx context.Context, m *MessageView) error {
		started <- struct{}{}
		time.Sleep(200 * time.Millisecond)
		finished.Add(1)
		return ctx.Err()
	}, 3, WithReceiveWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-started
	}
	pc.Close()
	if finished.Load() != 3 {
		t.Fatalf("Close returned with %d of 3 handlers finished", finished.Load())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.stored["t"] {
		if !m.acked {
			t.Fatalf("message %s not acked after a graceful close", m.pb.Id)
		}
	}
}

func TestPushConsumerDrainTimeoutCancelsHandlers(t *testing.T) {
	_, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	if _, err := c.NewProducer().Send(context.Background(), &Message{Topic: "t", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	pc, _ := c.NewPushConsumer("g", "t", "*", func(ctx context.Context, m *MessageView) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}, 1, WithReceiveWait(50*time.Millisecond), WithDrainTimeout(100*time.Millisecond))
	<-started
	done := make(chan struct{})
	go func() { pc.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a handler that waits for its context")
	}
}

func TestClosedClient(t *testing.T) {
	_, addr := newFakeProxy(t, "idc-a")
	c := newTestClient(t, testConfig(addr))
	c.Close()
	c.Close()
	if _, err := c.NewProducer().Send(context.Background(), &Message{Topic: "t", Body: []byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send on a closed client: %v", err)
	}
}
