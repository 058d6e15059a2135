package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/duomq/duomq/dr/meta/member"
	"github.com/duomq/duomq/internal/freeport"
)

// Timing of test members: half of etcd's defaults, so a killed leader is
// replaced within about a second; loopback keeps heartbeats well inside
// that even under the race detector on two cores.
const (
	heartbeat = 50 * time.Millisecond
	election  = 500 * time.Millisecond
)

// Cluster is a running n-member etcd cluster.
type Cluster struct {
	cfgs []member.Config

	mu      sync.Mutex
	members []*member.Member // nil while killed
	clients []*clientv3.Client
	// held keeps a killed member's fixed ports bound until its restart,
	// so that no other process's component takes them meanwhile.
	held map[int][]net.Listener
}

// NewCluster starts an n-member cluster and registers its cleanup on t.
// Three members are named idc-a, idc-b and witness, as the sites are.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdtest: cluster of %d members", n)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := start(t, n)
		if err == nil {
			t.Cleanup(c.cleanup)
			return c
		}
		lastErr = err
		if !isAddrInUse(err) {
			break
		}
	}
	t.Fatalf("etcdtest: start %d members: %v", n, lastErr)
	return nil
}

func memberNames(n int) []string {
	if n == 3 {
		return []string{"idc-a", "idc-b", "witness"}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = "m" + strconv.Itoa(i)
	}
	return out
}

func start(t testing.TB, n int) (*Cluster, error) {
	ports, err := freeport.Take(2 * n)
	if err != nil {
		return nil, err
	}
	names := memberNames(n)
	initial := make(map[string]string, n)
	for i, name := range names {
		initial[name] = "http://127.0.0.1:" + strconv.Itoa(ports[2*i+1])
	}
	dir := t.TempDir()
	c := &Cluster{cfgs: make([]member.Config, n), members: make([]*member.Member, n)}
	for i, name := range names {
		cfg := member.DefaultConfig()
		cfg.Name = name
		cfg.DataDir = fmt.Sprintf("%s/%s", dir, name)
		cfg.ClientURL = "http://127.0.0.1:" + strconv.Itoa(ports[2*i])
		cfg.PeerURL = initial[name]
		cfg.InitialCluster = initial
		cfg.HeartbeatInterval, cfg.ElectionTimeout = heartbeat, election
		cfg.StartTimeout = 30 * time.Second
		cfg.Logger = testLogger()
		c.cfgs[i] = cfg
	}
	// Every member waits for a quorum, so they start together.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range c.cfgs {
		wg.Go(func() { c.members[i], errs[i] = member.Start(context.Background(), c.cfgs[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.cleanup()
		return nil, err
	}
	return c, nil
}

func testLogger() *slog.Logger {
	if os.Getenv("DUOMQ_TEST_ETCD_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// Size is the number of members, running or not.
func (c *Cluster) Size() int { return len(c.cfgs) }

// Endpoints are the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.cfgs))
	for i, cfg := range c.cfgs {
		out[i] = cfg.ClientURL
	}
	return out
}

// Client returns a client of every member, closed at t's cleanup (and in any
// case before the members stop).
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            c.Endpoints(),
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	c.mu.Lock()
	c.clients = append(c.clients, cli)
	c.mu.Unlock()
	t.Cleanup(func() { c.closeClient(cli) })
	return cli
}

func (c *Cluster) closeClient(cli *clientv3.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.clients {
		if x == cli {
			c.clients = append(c.clients[:i], c.clients[i+1:]...)
			cli.Close()
			return
		}
	}
}

// Member is the i-th member, or nil while it is killed.
func (c *Cluster) Member(i int) *member.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i]
}

// Config is the i-th member's configuration.
func (c *Cluster) Config(i int) member.Config { return c.cfgs[i] }

// Kill crashes the i-th member (etcd HardStop: no leadership hand-over).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	m := c.members[i]
	c.members[i] = nil
	c.mu.Unlock()
	if m != nil {
		m.HardStop()
		c.hold(i)
	}
}

// hold binds member i's client and peer ports (best effort).
func (c *Cluster) hold(i int) {
	var ls []net.Listener
	for _, raw := range []string{c.cfgs[i].ClientURL, c.cfgs[i].PeerURL} {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if l, err := net.Listen("tcp", u.Host); err == nil {
			ls = append(ls, l)
		}
	}
	c.mu.Lock()
	if c.held == nil {
		c.held = map[int][]net.Listener{}
	}
	c.held[i] = ls
	c.mu.Unlock()
}

// release lets go of member i's held ports.
func (c *Cluster) release(i int) {
	c.mu.Lock()
	ls := c.held[i]
	delete(c.held, i)
	c.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

// Restart starts the killed i-th member again on its data directory and
// waits until it is ready, which needs a quorum including it.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	if c.Member(i) != nil {
		t.Fatalf("etcdtest: restart of member %d that is running", i)
	}
	cfg := c.cfgs[i]
	cfg.ClusterState = member.StateExisting
	c.release(i)
	// Between the release and the member's bind another test process may
	// probe the port (freeport binds a candidate for an instant): a bind
	// that fails with "address already in use" is tried again for a while.
	var m *member.Member
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		m, err = member.Start(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the other process lets go of the port on its own
	}
	if err != nil {
		t.Fatalf("etcdtest: restart member %s: %v", cfg.Name, err)
	}
	c.mu.Lock()
	c.members[i] = m
	c.mu.Unlock()
}

// Leader waits up to timeout for a running member that is the raft leader
// and returns its index.
func (c *Cluster) Leader(t testing.TB, timeout time.Duration) int {
	t.Helper()
	leader := -1
	Eventually(t, timeout, func() bool {
		leader = c.leader()
		return leader >= 0
	}, "no etcd leader among the running members")
	return leader
}

func (c *Cluster) leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m != nil && m.IsLeader() {
			return i
		}
	}
	return -1
}

// cleanup closes the clients, then stops every member at once. Members stop
// hard: a graceful leave would wait for leadership hand-overs among members
// that are all going away.
func (c *Cluster) cleanup() {
	c.mu.Lock()
	clients := c.clients
	c.clients = nil
	members := append([]*member.Member(nil), c.members...)
	for i := range c.members {
		c.members[i] = nil
	}
	held := c.held
	c.held = nil
	c.mu.Unlock()
	for _, ls := range held {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, cli := range clients {
		cli.Close()
	}
	var wg sync.WaitGroup
	for _, m := range members {
		if m != nil {
			wg.Go(m.HardStop)
		}
	}
	wg.Wait()
}

// Eventually polls cond every 20ms until it holds, failing t with msg when
// timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
