package nameserver

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/internal/etcdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock for lease tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// serveNSB is serveNS for benchmarks.
func serveNSB(b *testing.B) (*Server, string, func()) { return serveNS(b, DefaultConfig()) }

// serveNS runs a nameserver on a loopback port; stop() kills it.
func serveNS(t testing.TB, cfg Config) (*Server, string, func()) {
	t.Helper()
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	nameserverpb.RegisterNameserverServer(gs, s)
	go gs.Serve(l)
	var once sync.Once
	stop := func() { once.Do(gs.Stop) }
	t.Cleanup(stop)
	return s, l.Addr().String(), stop
}

func reg(name, dc string, topics ...string) *nameserverpb.BrokerRegistration {
	r := &nameserverpb.BrokerRegistration{Name: name, Address: "127.0.0.1:1", Dc: dc, Perm: 6}
	for _, t := range topics {
		r.Topics = append(r.Topics, &nameserverpb.TopicQueues{Name: t, Queues: 4, Perm: 6})
	}
	return r
}

func TestLeaseExpiryDropsBrokerFromRoutes(t *testing.T) {
	cfg := DefaultConfig()
	s, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s.SetClock(clk.now)
	ctx := context.Background()
	for _, r := range []*nameserverpb.BrokerRegistration{reg("b0", "idc-a", "t1"), reg("b1", "idc-a", "t1"), reg("b2", "idc-b", "t1", "t2")} {
		if _, err := s.Register(ctx, &nameserverpb.RegisterRequest{Broker: r}); err != nil {
			t.Fatal(err)
		}
	}
	route, err := s.GetRoute(ctx, &nameserverpb.GetRouteRequest{Topic: "t1"})
	if err != nil || len(route.Brokers) != 3 {
		t.Fatalf("route %v %v", route, err)
	}
	route, _ = s.GetRoute(ctx, &nameserverpb.GetRouteRequest{Topic: "t1", Dc: "idc-b"})
	if len(route.Brokers) != 1 || route.Brokers[0].Broker != "b2" {
		t.Fatalf("dc filter: %v", route)
	}
	// b0 keeps heartbeating, b1 and b2 stop.
	clk.add(cfg.Lease / 2)
	s.Register(ctx, &nameserverpb.RegisterRequest{Broker: reg("b0", "idc-a", "t1")})
	clk.add(cfg.Lease/2 + time.Millisecond)
	route, err = s.GetRoute(ctx, &nameserverpb.GetRouteRequest{Topic: "t1"})
	if err != nil || len(route.Brokers) != 1 || route.Brokers[0].Broker != "b0" {
		t.Fatalf("after expiry: %v %v", route, err)
	}
	if _, err := s.GetRoute(ctx, &nameserverpb.GetRouteRequest{Topic: "t2"}); status.Code(err) != codes.NotFound {
		t.Fatalf("route of topic whose only broker expired: %v", err)
	}
	s.sweep()
	if n := len(s.brokers); n != 1 {
		t.Fatalf("sweep left %d registrations", n)
	}
}

func TestRegisterValidation(t *testing.T) {
	s, _ := New(DefaultConfig(), nil, nil)
	bad := []*nameserverpb.BrokerRegistration{
		nil,
		{Name: "", Address: "127.0.0.1:1", Dc: "idc-a"},
		{Name: "b", Address: "no-port", Dc: "idc-a"},
		{Name: "b", Address: "127.0.0.1:1", Dc: "bad dc"},
		{Name: "b", Address: "127.0.0.1:1", Dc: "idc-a", Topics: []*nameserverpb.TopicQueues{{Name: "t", Queues: 0}}},
	}
	for i, r := range bad {
		_, err := s.Register(context.Background(), &nameserverpb.RegisterRequest{Broker: r})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("case %d: %v", i, err)
		}
	}
	if len(s.live("")) != 0 {
		t.Fatal("a bad registration was recorded")
	}
}

func TestRegistrarAndCachedRoutesWhileNameserversDown(t *testing.T) {
	cfg := DefaultConfig()
	_, addr1, stop1 := serveNS(t, cfg)
	_, addr2, stop2 := serveNS(t, cfg)
	r, err := NewRegistrar([]string{addr1, addr2}, 50*time.Millisecond, func() *nameserverpb.BrokerRegistration { return reg("b0", "idc-a", "t1") }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.RegisterOnce(context.Background()); n != 2 {
		t.Fatalf("registered with %d of 2 nameservers", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	rc, err := NewRouteClient([]string{addr1, addr2}, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	rc.now = clk.now
	if _, _, err := rc.Route(context.Background(), "t-missing", ""); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("unknown topic: %v", err)
	}
	route, _, err := rc.Route(context.Background(), "t1", "")
	if err != nil || len(route.Brokers) != 1 {
		t.Fatalf("route: %v %v", route, err)
	}
	stop1()
	stop2()
	clk.add(20 * time.Millisecond) // the cached route is now stale
	route, age, err := rc.Route(context.Background(), "t1", "")
	if err != nil || len(route.Brokers) != 1 || age < 10*time.Millisecond {
		t.Fatalf("cached route while nameservers are down: %v age %v err %v", route, age, err)
	}
	if _, _, err := rc.Route(context.Background(), "t-other", ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("uncached route while nameservers are down: %v", err)
	}
}

// A registration that changed (a new topic) is sent at once, not at the
// next heartbeat: a new topic is routable within a fraction of a second.
func TestRegistrarSendsChangesAtOnce(t *testing.T) {
	s, addr, _ := serveNS(t, DefaultConfig())
	var mu sync.Mutex
	topics := []string{"t1"}
	r, err := NewRegistrar([]string{addr}, time.Hour, func() *nameserverpb.BrokerRegistration {
		mu.Lock()
		defer mu.Unlock()
		return reg("b0", "idc-a", topics...)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	routed := func(topic string) bool {
		route, err := s.GetRoute(context.Background(), &nameserverpb.GetRouteRequest{Topic: topic})
		return err == nil && len(route.GetBrokers()) == 1
	}
	etcdtest.Eventually(t, 5*time.Second, func() bool { return routed("t1") }, "first registration")
	mu.Lock()
	topics = append(topics, "t2")
	mu.Unlock()
	start := time.Now()
	etcdtest.Eventually(t, 5*time.Second, func() bool { return routed("t2") }, "the new topic routed")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a new topic took %v to reach the nameserver (heartbeat every hour)", d)
	}
}
