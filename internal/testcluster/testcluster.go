package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/etcdtest"
	"github.com/duomq/duomq/nameserver"
	"github.com/duomq/duomq/proxy"
)

// The data centers of the topology and the CIDRs recorded for them.
const (
	DCA = "idc-a"
	DCB = "idc-b"
)

// CIDRs are the address ranges recorded for each DC in the metadata.
var CIDRs = map[string][]string{DCA: {"127.1.0.0/16"}, DCB: {"127.2.0.0/16"}}

// Options shape the topology. The zero value is two brokers per DC with
// async flush and fast redelivery.
type Options struct {
	// BrokersPerDC defaults to 2.
	BrokersPerDC int
	// FlushMode of the brokers: "async" (default) or "sync".
	FlushMode string
	// Broker and Proxy, when set, adjust each component's configuration
	// before it starts (the defaults are described at New).
	Broker func(dc string, i int, pc *daemon.BrokerProcess)
	Proxy  func(dc string, cfg *proxy.Config)
	// Logger receives every component's log; default: discarded, or
	// stderr at debug level when DUOMQ_TEST_LOG is set.
	Logger *slog.Logger
}

// Cluster is a running topology. Its methods may be called from the test
// goroutine only, except the address accessors.
type Cluster struct {
	opts  Options
	etcd  *etcdtest.Cluster
	store *meta.Store
	log   *slog.Logger
	dcs   map[string]*site

	mu      sync.Mutex
	clients []*grpc.ClientConn
	closed  bool
}

// site is one DC's components.
type site struct {
	name    string
	cache   *meta.Cache
	ns      *component
	brokers []*brokerSlot
	proxy   *component
	repl    *component
}

type brokerSlot struct {
	pc   daemon.BrokerProcess
	name string
	addr string // fixed after the first start, so a restart keeps it
	run  *component
}

// component is one running RunX call.
type component struct {
	cancel context.CancelFunc
	done   chan error
	ep     daemon.Endpoints
}

// New starts the topology and registers its Close with t.Cleanup: a
// 3-member etcd (idc-a, idc-b, witness), the DCs recorded in the metadata
// (state active, CIDRs above), and per DC a nameserver, the brokers (each
// with its own data directory under t.TempDir(), topics reconciled from
// the metadata) and a proxy routing to both DCs. Everything listens on
// 127.0.0.1 on ports the kernel picks.
//
// Defaults that keep tests fast: brokers heartbeat every 200ms and
// redeliver unacked messages after 200ms; proxies refresh routes every
// 200ms, count a group's consumers live for 3s and open a broker's circuit
// breaker for 1s.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.BrokersPerDC <= 0 {
		opts.BrokersPerDC = 2
	}
	if opts.FlushMode == "" {
		opts.FlushMode = broker.FlushAsync
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
		if os.Getenv("DUOMQ_TEST_LOG") != "" {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}
	c := &Cluster{opts: opts, log: opts.Logger, dcs: map[string]*site{}}
	c.etcd = etcdtest.NewCluster(t, 3)
	c.store = meta.New(c.etcd.Client(t), meta.Options{Timeout: 5 * time.Second, Logger: opts.Logger})
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, dc := range c.DCs() {
		if _, err := c.store.PutDC(ctx, meta.DC{Name: dc, CIDRs: CIDRs[dc], State: meta.DCActive, UpdatedBy: "testcluster"}); err != nil {
			t.Fatalf("testcluster: record dc %s: %v", dc, err)
		}
	}
	for _, dc := range c.DCs() {
		if err := c.startSite(ctx, t.TempDir(), dc); err != nil {
			t.Fatalf("testcluster: %s: %v", dc, err)
		}
	}
	want := map[string]int{}
	for _, dc := range c.DCs() {
		want[dc] = opts.BrokersPerDC
	}
	// A DC's placement of queues is over its registered brokers: a test
	// that wrote before the last broker joined would see its queues move.
	if err := c.store.WaitRegistered(ctx, want); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	for _, dc := range c.DCs() {
		if err := c.startProxy(dc); err != nil {
			t.Fatalf("testcluster: proxy of %s: %v", dc, err)
		}
	}
	return c
}

func (c *Cluster) startSite(ctx context.Context, dir, dc string) error {
	cache, err := meta.NewCache(ctx, c.store)
	if err != nil {
		return err
	}
	s := &site{name: dc, cache: cache}
	c.dcs[dc] = s
	logger := c.log.With("site", dc)
	nsp := daemon.DefaultNameserverProcess()
	nsp.Listen, nsp.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	nsp.Nameserver = nameserver.DefaultConfig()
	nsp.Nameserver.DC = dc
	s.ns, err = start(func(ctx context.Context, d daemon.Deps) error { return daemon.RunNameserver(ctx, nsp, d) }, logger)
	if err != nil {
		return fmt.Errorf("nameserver: %w", err)
	}
	for i := range c.opts.BrokersPerDC {
		pc := daemon.DefaultBrokerProcess()
		pc.Listen, pc.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
		pc.Nameservers, pc.HeartbeatInterval = []string{s.ns.ep.GRPC}, 200*time.Millisecond
		pc.Broker = broker.DefaultConfig()
		pc.Broker.Name = fmt.Sprintf("broker-%s-%d", dc[len(dc)-1:], i)
		pc.Broker.DC = dc
		pc.Broker.DataDir = filepath.Join(dir, pc.Broker.Name)
		pc.Broker.FlushMode = c.opts.FlushMode
		pc.Broker.SegmentBytes = 16 << 20
		pc.Broker.RetryBackoff = []time.Duration{200 * time.Millisecond}
		if c.opts.Broker != nil {
			c.opts.Broker(dc, i, &pc)
		}
		b := &brokerSlot{pc: pc, name: pc.Broker.Name}
		s.brokers = append(s.brokers, b)
		if err := c.runBroker(s, b); err != nil {
			return fmt.Errorf("broker %s: %w", b.name, err)
		}
	}
	if err := c.startReplicator(dc); err != nil {
		return fmt.Errorf("replicator: %w", err)
	}
	return nil
}

// startReplicator runs the DC's replicator with fast polling.
func (c *Cluster) startReplicator(dc string) error {
	s := c.dcs[dc]
	rp := daemon.DefaultReplicatorProcess()
	rp.MetricsListen = "127.0.0.1:0"
	rp.Replicator.DC = dc
	rp.Replicator.FetchWait = 500 * time.Millisecond
	pm := daemon.ProxyMeta{Store: c.store, Cache: s.cache}
	var err error
	s.repl, err = start(func(ctx context.Context, d daemon.Deps) error { return daemon.RunReplicator(ctx, rp, pm, d) }, c.log.With("site", dc))
	return err
}

// StopReplicator stops a DC's replicator (its copies stop following).
func (c *Cluster) StopReplicator(t testing.TB, dc string) {
	t.Helper()
	s := c.site(dc)
	if s.repl == nil {
		t.Fatalf("replicator of %s is not running", dc)
	}
	if err := s.repl.stop(); err != nil {
		t.Fatalf("replicator of %s: %v", dc, err)
	}
	s.repl = nil
}

// StartReplicator starts a stopped replicator again.
func (c *Cluster) StartReplicator(t testing.TB, dc string) {
	t.Helper()
	if err := c.startReplicator(dc); err != nil {
		t.Fatalf("replicator of %s: %v", dc, err)
	}
}

// ReplicatorMetrics is the metrics URL of a DC's replicator.
func (c *Cluster) ReplicatorMetrics(dc string) string { return c.site(dc).repl.ep.Metrics }

func (c *Cluster) runBroker(s *site, b *brokerSlot) error {
	pc := b.pc
	if b.addr != "" {
		pc.Listen = b.addr
	}
	run, err := start(func(ctx context.Context, d daemon.Deps) error {
		return daemon.RunBroker(ctx, pc, daemon.BrokerMeta{Cache: s.cache, Store: c.store}, d)
	}, c.log.With("site", s.name))
	if err != nil {
		return err
	}
	b.run, b.addr = run, run.ep.GRPC
	return nil
}

func (c *Cluster) startProxy(dc string) error {
	s := c.dcs[dc]
	cfg := proxy.DefaultConfig()
	cfg.DC, cfg.ID = dc, dc+"-proxy"
	cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Etcd = c.etcd.Endpoints()
	cfg.Nameservers = map[string][]string{}
	for _, other := range c.DCs() {
		cfg.Nameservers[other] = []string{c.dcs[other].ns.ep.GRPC}
	}
	cfg.RouteRefresh = 200 * time.Millisecond
	cfg.ConsumerTTL = 3 * time.Second
	cfg.Breaker.OpenFor = time.Second
	if c.opts.Proxy != nil {
		c.opts.Proxy(dc, &cfg)
	}
	pp := daemon.ProxyProcess{Proxy: cfg}
	pm := daemon.ProxyMeta{Store: c.store, Cache: s.cache}
	var err error
	s.proxy, err = start(func(ctx context.Context, d daemon.Deps) error { return daemon.RunProxy(ctx, pp, pm, d) }, c.log.With("site", dc))
	return err
}

// start runs a component until its context ends and waits until it
// serves (or fails).
func start(run func(context.Context, daemon.Deps) error, logger *slog.Logger) (*component, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan daemon.Endpoints, 1)
	c := &component{cancel: cancel, done: make(chan error, 1)}
	go func() {
		c.done <- run(ctx, daemon.Deps{Logger: logger, Ready: func(e daemon.Endpoints) { ready <- e }})
	}()
	select {
	case c.ep = <-ready:
		return c, nil
	case err := <-c.done:
		cancel()
		if err == nil {
			err = fmt.Errorf("stopped before serving")
		}
		return nil, err
	case <-time.After(30 * time.Second):
		cancel()
		return nil, fmt.Errorf("not serving within 30s")
	}
}

// stop ends a component and returns its error.
func (cp *component) stop() error {
	cp.cancel()
	return <-cp.done
}

// Close stops every component (proxies, then brokers and nameservers, all
// of a kind at once) and the metadata caches; t.Cleanup calls it, then
// stops etcd. Safe to call twice.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	clients := c.clients
	c.mu.Unlock()
	for _, cc := range clients {
		cc.Close()
	}
	var proxies, servers []*component
	for _, s := range c.dcs {
		if s.proxy != nil {
			proxies = append(proxies, s.proxy)
		}
		if s.repl != nil {
			proxies = append(proxies, s.repl)
		}
		for _, b := range s.brokers {
			if b.run != nil {
				servers = append(servers, b.run)
			}
		}
		if s.ns != nil {
			servers = append(servers, s.ns)
		}
	}
	stopAll(c.log, proxies)
	stopAll(c.log, servers)
	for _, s := range c.dcs {
		s.cache.Close()
	}
}

func stopAll(logger *slog.Logger, cs []*component) {
	var wg sync.WaitGroup
	for _, cp := range cs {
		wg.Go(func() {
			if err := cp.stop(); err != nil {
				logger.Error("component stopped with an error", "err", err)
			}
		})
	}
	wg.Wait()
}

// DCs are the two data centers, sorted.
func (c *Cluster) DCs() []string { return []string{DCA, DCB} }

// Meta is the metadata store (the caller must not close its client).
func (c *Cluster) Meta() *meta.Store { return c.store }

// EtcdEndpoints are the client URLs of the etcd members.
func (c *Cluster) EtcdEndpoints() []string { return c.etcd.Endpoints() }

// Proxy is the gRPC address of dc's proxy.
func (c *Cluster) Proxy(dc string) string { return c.site(dc).proxy.ep.GRPC }

// ProxyMetrics is the /metrics URL of dc's proxy.
func (c *Cluster) ProxyMetrics(dc string) string { return c.site(dc).proxy.ep.Metrics }

// Nameserver is the gRPC address of dc's nameserver.
func (c *Cluster) Nameserver(dc string) string { return c.site(dc).ns.ep.GRPC }

// Brokers are the gRPC addresses of dc's brokers (running or stopped), in
// the order of BrokerNames.
func (c *Cluster) Brokers(dc string) []string {
	var out []string
	for _, b := range c.site(dc).brokers {
		out = append(out, b.addr)
	}
	return out
}

// BrokerNames are the names of dc's brokers: broker-a-0, broker-a-1, ...
func (c *Cluster) BrokerNames(dc string) []string {
	var out []string
	for _, b := range c.site(dc).brokers {
		out = append(out, b.name)
	}
	return out
}

func (c *Cluster) site(dc string) *site {
	s, ok := c.dcs[dc]
	if !ok {
		panic(fmt.Sprintf("testcluster: no dc %q (have %s and %s)", dc, DCA, DCB))
	}
	return s
}

// ProxyClient is a client of dc's proxy, closed with the cluster.
func (c *Cluster) ProxyClient(t testing.TB, dc string, opts ...grpc.DialOption) proxypb.ProxyClient {
	t.Helper()
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient(c.Proxy(dc), opts...)
	if err != nil {
		t.Fatalf("testcluster: dial proxy of %s: %v", dc, err)
	}
	c.mu.Lock()
	c.clients = append(c.clients, cc)
	c.mu.Unlock()
	return proxypb.NewProxyClient(cc)
}
