package proxy

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/logging"
)

// Metadata is the routing metadata the proxy reads on every call: a
// *meta.Cache.
type Metadata interface {
	Topic(name string) (meta.Topic, bool)
	Group(name string) (meta.Group, bool)
	Groups() []meta.Group
	DC(name string) (meta.DC, bool)
	DCs() []meta.DC
	Ordered(topic string) (meta.Ordered, int64, bool)
	Traffic() (meta.Traffic, int64)
	// Brokers are a DC's live brokers sorted by name.
	Brokers(dc string) []meta.Alive
	// Placement is a DC's placement of replicated queues (meta.Place),
	// shared with the replicators and the controller.
	Placement(dc string) []meta.Slot
}

// OrderedReader reads an ordered topic's fencing record from the metadata
// store itself, past the cache: a *meta.Store.
type OrderedReader interface {
	GetOrdered(ctx context.Context, topic string) (meta.Ordered, int64, error)
}

// Routes finds the brokers of a topic in one DC: a *nameserver.RouteClient
// over that DC's nameservers.
type Routes interface {
	Route(ctx context.Context, topic, dc string) (*nameserverpb.Route, time.Duration, error)
}

// Presence publishes which consumer groups have live consumers at this
// proxy and tells which DCs have live consumers of a group (EtcdPresence).
type Presence interface {
	// SetLocal replaces the set of groups with live consumers here.
	SetLocal(groups []string)
	// Live reports whether dc has live consumers of group. An
	// implementation that does not know yet answers true, so a proxy never
	// takes over another DC's share on a guess.
	Live(group, dc string) bool
}

// Deps are the proxy's collaborators.
type Deps struct {
	// Meta is required.
	Meta Metadata
	// Ordered re-reads a fencing record after a broker refused a stale
	// epoch; nil: the proxy waits briefly for Meta to move instead.
	Ordered OrderedReader
	// Routes maps every DC the proxy routes to (its own at least) to a
	// route client of that DC's nameservers.
	Routes map[string]Routes
	// Presence, nil: every DC is taken to consume its own share.
	Presence Presence
	// Dial opens broker connections; nil: plain-text gRPC.
	Dial   func(addr string) (*grpc.ClientConn, error)
	Logger *slog.Logger
	// Registerer receives the proxy's metrics; nil: not exported.
	Registerer prometheus.Registerer
	// Now defaults to time.Now.
	Now func() time.Time
}

// Proxy implements proxypb.ProxyServer. It keeps no state that matters
// across restarts: routes and metadata come from the nameservers and the
// cache, clients re-register by heartbeat.
type Proxy struct {
	proxypb.UnimplementedProxyServer

	cfg      Config
	meta     Metadata
	ordered  OrderedReader
	routes   map[string]Routes
	presence Presence
	log      *slog.Logger
	now      func() time.Time
	metrics  *metrics

	brokers  *brokerPool
	clients  *registry
	throttle *throttler
	auth     *authenticator
	picker   *picker

	fallbackMu sync.Mutex
	fallbacks  map[string]string // topic -> reason its last write went elsewhere

	// stopCtx ends when Run returns or at Close, ending long polls so a
	// stopping server drains quickly.
	stopCtx   context.Context
	stop      context.CancelFunc
	closeOnce sync.Once
	// fences ends ordered sends to a primary that was replaced (fence.go).
	fences *fences
}

// New validates cfg and returns a proxy; Run serves its background work
// and Register adds it to a gRPC server.
func New(cfg Config, d Deps) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Meta == nil {
		return nil, errorf(ErrInvalidConfig, "proxy: no metadata (Deps.Meta)")
	}
	if d.Routes[cfg.DC] == nil {
		return nil, errorf(ErrInvalidConfig, "proxy: no route client for the proxy's own dc %q (Deps.Routes)", cfg.DC)
	}
	if cfg.ID == "" {
		cfg.ID = DefaultID(cfg.DC)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	p := &Proxy{
		cfg: cfg, meta: d.Meta, ordered: d.Ordered, routes: d.Routes, presence: d.Presence,
		log: d.Logger.With("component", "proxy", "dc", cfg.DC), now: d.Now,
		clients:  newRegistry(cfg.ClientTTL, cfg.ConsumerTTL, d.Now),
		throttle: newThrottler(cfg.Throttle, d.Now),
		auth:     newAuthenticator(cfg.Auth, d.Now),
		picker:   newPicker(),

		fallbacks: map[string]string{},
	}
	p.stopCtx, p.stop = context.WithCancel(context.Background())
	p.fences = newFences(d.Meta)
	p.metrics = newMetrics(d.Registerer, func() float64 { return float64(p.clients.count()) })
	p.brokers = newBrokerPool(cfg.Breaker, d.Dial, p.metrics)
	return p, nil
}

// Config is the validated configuration (with the chosen ID).
func (p *Proxy) Config() Config { return p.cfg }

// Register adds the proxy service to s.
func (p *Proxy) Register(s *grpc.Server) { proxypb.RegisterProxyServer(s, p) }

// ServerOptions are the options of the gRPC server that serves the proxy:
// TLS (when configured), the receive limit, the interceptor that takes the
// caller's trace id and logs failed calls (internal/logging), and the one
// that authenticates, measures and converts errors.
func (p *Proxy) ServerOptions() ([]grpc.ServerOption, error) {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(p.cfg.Limits.MaxRequestBytes),
		grpc.MaxSendMsgSize(p.cfg.Limits.MaxRequestBytes),
		grpc.ChainUnaryInterceptor(logging.UnaryServerInterceptor(p.log, traceIDOf), p.intercept),
		// Reused handler goroutines keep their grown stacks: a fresh
		// goroutine per call spends a good part of a send growing its stack
		// through the broker call.
		grpc.NumStreamWorkers(uint32(4 * runtime.GOMAXPROCS(0))),
	}
	if p.cfg.TLS.Enabled() {
		creds, err := serverCredentials(p.cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(creds))
	}
	return opts, nil
}

// Run does the background work until ctx ends: expiring clients and
// publishing this proxy's live consumer groups. When it returns, waiting
// receives end at once (with what they have, usually nothing).
func (p *Proxy) Run(ctx context.Context) error {
	defer p.stop()
	fctx, fcancel := context.WithCancel(ctx)
	var fwg sync.WaitGroup
	fwg.Go(func() { p.fences.run(fctx) })
	defer fwg.Wait()
	defer fcancel()
	t := time.NewTicker(p.cfg.ConsumerTTL / 4)
	defer t.Stop()
	for {
		p.clients.sweep()
		p.throttle.sweep()
		p.publishGroups()
		select {
		case <-ctx.Done():
			return nil
		case <-p.stopCtx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close ends waiting receives and closes the broker connections; calls
// in flight fail. Safe to call twice.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.stop()
		p.fences.close()
		p.brokers.close()
	})
}

// intercept authenticates a call, checks its permission, measures it and
// converts its error to a status.
func (p *Proxy) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := p.now()
	method := methodName(info.FullMethod)
	var resp any
	err := p.authorize(ctx, req, info.FullMethod)
	if err == nil {
		resp, err = handler(ctx, req)
	}
	if err != nil {
		err = toStatus(err)
	}
	p.metrics.requests.WithLabelValues(method, codeOf(err)).Inc()
	p.metrics.requestDuration.WithLabelValues(method).Observe(p.now().Sub(start).Seconds())
	return resp, err
}

// traceIDOf names the trace id of a failed call whose caller sent none:
// the id of the first message of a send (clients assign ids; the SDK
// always does), of a dead-letter re-drive or of a message trace.
func traceIDOf(req any) string {
	switch r := req.(type) {
	case *proxypb.SendRequest:
		if ms := r.GetMessages(); len(ms) > 0 {
			return ms[0].GetId()
		}
	case *proxypb.RedriveDeadLettersRequest:
		if ids := r.GetIds(); len(ids) > 0 {
			return ids[0]
		}
	case *proxypb.TraceMessageRequest:
		return r.GetId()
	}
	return ""
}

func methodName(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			return full[i+1:]
		}
	}
	return full
}

// callCtx bounds a broker call by the client's deadline, or by the
// broker timeout (plus extra for long polls) when the client set none. A
// caller's trace id goes along, so the broker logs under it too.
func (p *Proxy) callCtx(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	ctx = logging.OutgoingTrace(ctx)
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, p.cfg.BrokerTimeout+extra)
}
