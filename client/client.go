package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/proxy/auth"
)

// Version is the SDK version sent in heartbeats (duomq clients shows it).
const Version = "0.1.0"

// Client is a connection to the proxy of the client's IDC. Producers and
// consumers are made from it and share its connection and heartbeat. It is
// safe for concurrent use; Close it when done.
type Client struct {
	cfg    Config
	log    *slog.Logger
	conn   *grpc.ClientConn
	api    proxypb.ProxyClient
	target string
	id     string
	host   string

	mu        sync.Mutex
	idc       string
	idcSource string
	proxyDC   string
	topics    map[string]struct{}
	groups    map[string]struct{}
	announce  bool // a producer or consumer exists: heartbeats are sent
	closed    bool

	kick      chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// Option changes how New builds a Client.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	dialOpts []grpc.DialOption
	probe    *idcProbe
}

// WithLogger logs the client's background work (heartbeats, retries of
// push consumers) to l.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithDialOptions adds gRPC dial options (interceptors, a custom dialer).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// New detects the client's IDC, connects to that IDC's proxy and starts
// heartbeats. The connection is made lazily: New fails only on a bad
// configuration or when the IDC is needed to choose a proxy and unknown.
func New(ctx context.Context, cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	dial, err := dialOptions(cfg, o.dialOpts)
	if err != nil {
		return nil, err
	}
	cs := &connSet{opts: dial, m: map[string]*grpc.ClientConn{}}
	probe := systemProbe(func(ctx context.Context, addrs []string) (string, error) {
		return resolveIDC(ctx, cfg.lookupTargets(), cs.get, addrs)
	})
	if o.probe != nil {
		probe = *o.probe
	}
	idc, source := detectIDC(ctx, cfg.IDC, probe, o.logger)
	target, err := cfg.proxyFor(idc)
	var cc *grpc.ClientConn
	if err == nil {
		cc, err = cs.get(target)
	}
	cs.closeExcept(target, err == nil)
	if err != nil {
		return nil, err
	}
	return start(cfg, o.logger, cc, target, idc, source), nil
}

// connSet holds the connections made while choosing a proxy (IDC
// detection may ask every proxy); only the chosen one is kept.
type connSet struct {
	opts []grpc.DialOption
	m    map[string]*grpc.ClientConn
}

func (cs *connSet) get(target string) (*grpc.ClientConn, error) {
	if cc, ok := cs.m[target]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(target, cs.opts...)
	if err != nil {
		return nil, fmt.Errorf("client: proxy %s: %w", target, err)
	}
	cs.m[target] = cc
	return cc, nil
}

// closeExcept closes every connection but keep's (when keeping it).
func (cs *connSet) closeExcept(keep string, keeping bool) {
	for t, cc := range cs.m {
		if !keeping || t != keep {
			cc.Close()
		}
	}
}

func start(cfg Config, log *slog.Logger, cc *grpc.ClientConn, target, idc, source string) *Client {
	host, _ := os.Hostname()
	c := &Client{
		cfg: cfg, log: log, conn: cc, api: proxypb.NewProxyClient(cc), target: target,
		id: newClientID(host), host: host, idc: idc, idcSource: source,
		topics: map[string]struct{}{}, groups: map[string]struct{}{},
		kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.heartbeatLoop(ctx)
	return c
}

func dialOptions(cfg Config, extra []grpc.DialOption) ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if cfg.TLS.Enabled {
		tc, err := cfg.TLS.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxReceiveBytes)),
	}
	if cfg.AccessKey != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Credentials{AccessKey: cfg.AccessKey, Secret: cfg.SecretKey}))
	}
	return append(opts, extra...), nil
}

// resolveIDC asks the proxies in turn; the first that answers decides.
func resolveIDC(ctx context.Context, targets []string, connect func(string) (*grpc.ClientConn, error), addrs []string) (string, error) {
	var last error
	for _, t := range targets {
		cc, err := connect(t)
		if err != nil {
			last = err
			continue
		}
		resp, err := proxypb.NewProxyClient(cc).ResolveIDC(ctx, &proxypb.ResolveIDCRequest{Addresses: addrs})
		if err != nil {
			last = wrapErr("resolve IDC", err)
			continue
		}
		return resp.GetIdc(), nil
	}
	return "", last
}

func newClientID(host string) string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s@%d@%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID is the client's id in heartbeats.
func (c *Client) ID() string { return c.id }

// IDC is the IDC the client runs in ("" while unknown).
func (c *Client) IDC() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idc
}

// IDCSource says how IDC was found: env, file, ip, default, proxy (learned
// from the first heartbeat reply), or "" while unknown.
func (c *Client) IDCSource() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idcSource
}

// ProxyDC is the DC of the proxy the client talks to, as its last
// heartbeat reply said ("" before the first one).
func (c *Client) ProxyDC() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proxyDC
}

// Target is the gRPC target of the proxy the client uses.
func (c *Client) Target() string { return c.target }

// Close stops heartbeats and closes the connection. Producers and
// consumers made from c should be closed first. Safe to call twice.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.cancel()
		<-c.done
		err = c.conn.Close()
	})
	return err
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// call runs one API call under the retry policy.
func (c *Client) call(ctx context.Context, op string, timeout time.Duration, fn func(ctx context.Context) error) error {
	if c.isClosed() {
		return &Error{Op: op, Message: ErrClosed.Error(), kind: ErrClosed}
	}
	return c.cfg.Retry.do(ctx, op, timeout, fn)
}

// callOnce runs a call that must not be repeated blindly.
func (c *Client) callOnce(ctx context.Context, op string, timeout time.Duration, fn func(ctx context.Context) error) error {
	if c.isClosed() {
		return &Error{Op: op, Message: ErrClosed.Error(), kind: ErrClosed}
	}
	p := c.cfg.Retry
	p.MaxAttempts = 1
	return p.do(ctx, op, timeout, fn)
}

// register adds a producer topic or a consumer group to the heartbeat and
// sends one at once when it is new. A client heartbeats once it has a
// producer or a consumer, so admin tools do not show up as clients.
func (c *Client) register(topic, group string) {
	c.mu.Lock()
	changed := !c.announce
	c.announce = true
	if _, ok := c.topics[topic]; topic != "" && !ok {
		c.topics[topic] = struct{}{}
		changed = true
	}
	if _, ok := c.groups[group]; group != "" && !ok {
		c.groups[group] = struct{}{}
		changed = true
	}
	c.mu.Unlock()
	if changed {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

func (c *Client) heartbeatLoop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		c.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}

func (c *Client) heartbeat(ctx context.Context) {
	c.mu.Lock()
	announce := c.announce
	c.mu.Unlock()
	if !announce {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	resp, err := c.api.Heartbeat(ctx, &proxypb.HeartbeatRequest{Client: c.info()})
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("heartbeat failed", "proxy", c.target, "err", err)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.proxyDC = resp.GetDc()
	if c.idc == "" && c.proxyDC != "" {
		c.idc, c.idcSource = c.proxyDC, SourceProxy
	}
}

func (c *Client) info() *proxypb.ClientInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &proxypb.ClientInfo{
		ClientId: c.id, App: c.cfg.App, Idc: c.idc, IdcSource: c.idcSource, SdkVersion: Version,
		ProducerTopics: sortedKeys(c.topics), ConsumerGroups: sortedKeys(c.groups), Host: c.host,
	}
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// withProbe replaces the environment, file system and interfaces that IDC
// detection reads (tests).
func withProbe(p idcProbe) Option { return func(o *options) { o.probe = &p } }
