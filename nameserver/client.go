package nameserver

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/protobuf/proto"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/nameserverpb"
)

// conns dials each nameserver address once.
type conns struct {
	addrs   []string
	clients []nameserverpb.NameserverClient
	closers []*grpc.ClientConn
}

func dial(addrs []string, opts ...grpc.DialOption) (*conns, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no nameserver address", ErrInvalid)
	}
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	c := &conns{addrs: addrs}
	for _, a := range addrs {
		cc, err := grpc.NewClient(a, opts...)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("nameserver %s: %w", a, err)
		}
		c.closers = append(c.closers, cc)
		c.clients = append(c.clients, nameserverpb.NewNameserverClient(cc))
	}
	return c, nil
}

func (c *conns) close() {
	for _, cc := range c.closers {
		cc.Close()
	}
}

// Registrar heartbeats one broker's registration to every nameserver.
type Registrar struct {
	c        *conns
	interval time.Duration
	snapshot func() *nameserverpb.BrokerRegistration
	log      *slog.Logger
}

// NewRegistrar registers snapshot() with every address every interval.
func NewRegistrar(addrs []string, interval time.Duration, snapshot func() *nameserverpb.BrokerRegistration, logger *slog.Logger) (*Registrar, error) {
	c, err := dial(addrs)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registrar{c: c, interval: interval, snapshot: snapshot, log: logger}, nil
}

// changeCheck is how often the registration is compared with the last
// one sent: a change (a topic created or grown, a permission changed) is
// sent at once instead of at the next heartbeat, so a new topic becomes
// routable within this long.
const changeCheck = 100 * time.Millisecond

// Run heartbeats until ctx ends, then unregisters (best effort) and closes.
// Besides the heartbeat every interval, a registration that changed is
// sent as soon as it is noticed.
func (r *Registrar) Run(ctx context.Context) error {
	defer r.c.close()
	t := time.NewTicker(min(changeCheck, r.interval))
	defer t.Stop()
	var last *nameserverpb.BrokerRegistration
	var sent time.Time
	for {
		if cur := r.snapshot(); last == nil || !proto.Equal(cur, last) || time.Since(sent) >= r.interval {
			if r.register(ctx, cur) > 0 {
				last = cur
			}
			sent = time.Now()
		}
		select {
		case <-ctx.Done():
			r.unregister()
			return nil
		case <-t.C:
		}
	}
}

// RegisterOnce sends one heartbeat to every nameserver in parallel and
// returns how many accepted it.
func (r *Registrar) RegisterOnce(ctx context.Context) int {
	return r.register(ctx, r.snapshot())
}

func (r *Registrar) register(ctx context.Context, reg *nameserverpb.BrokerRegistration) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i, cl := range r.c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, r.interval)
			defer cancel()
			if _, err := cl.Register(cctx, &nameserverpb.RegisterRequest{Broker: reg}); err != nil {
				if ctx.Err() == nil {
					r.log.Warn("heartbeat to nameserver failed", "nameserver", r.c.addrs[i], "err", err)
				}
				return
			}
			mu.Lock()
			ok++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return ok
}

func (r *Registrar) unregister() {
	reg := r.snapshot()
	// Short: on a whole-site stop the nameserver may already be gone.
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	for _, cl := range r.c.clients {
		cl.Unregister(ctx, &nameserverpb.UnregisterRequest{Name: reg.GetName(), Dc: reg.GetDc()})
	}
}

// RouteClient finds topic routes through any of several nameservers and
// caches them: a fresh route (younger than refresh) is served without a
// call, and a stale one is served while no nameserver answers.
type RouteClient struct {
	c       *conns
	refresh time.Duration
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]cachedRoute // key: dc + "/" + topic
}

type cachedRoute struct {
	route   *nameserverpb.Route
	fetched time.Time
}

// NewRouteClient dials the nameservers; routes are refreshed after refresh.
func NewRouteClient(addrs []string, refresh time.Duration, opts ...grpc.DialOption) (*RouteClient, error) {
	c, err := dial(addrs, opts...)
	if err != nil {
		return nil, err
	}
	return &RouteClient{c: c, refresh: refresh, timeout: time.Second, now: time.Now, cache: map[string]cachedRoute{}}, nil
}

// Close closes the connections.
func (rc *RouteClient) Close() { rc.c.close() }

// Route returns the route of topic in dc ("" = every DC) and its age. When
// every nameserver fails, the cached route is returned however old; with
// no cached route the error wraps ErrUnavailable (or ErrNoRoute when a
// nameserver answered that no broker hosts the topic).
func (rc *RouteClient) Route(ctx context.Context, topic, dc string) (*nameserverpb.Route, time.Duration, error) {
	key := dc + "/" + topic
	rc.mu.Lock()
	cached, ok := rc.cache[key]
	rc.mu.Unlock()
	if ok && rc.now().Sub(cached.fetched) < rc.refresh {
		return cached.route, rc.now().Sub(cached.fetched), nil
	}
	route, err := rc.fetch(ctx, topic, dc)
	switch {
	case err == nil:
		rc.mu.Lock()
		rc.cache[key] = cachedRoute{route: route, fetched: rc.now()}
		rc.mu.Unlock()
		return route, 0, nil
	case errors.Is(err, ErrNoRoute):
		rc.mu.Lock()
		delete(rc.cache, key)
		rc.mu.Unlock()
		return nil, 0, err
	case ok:
		return cached.route, rc.now().Sub(cached.fetched), nil
	}
	return nil, 0, err
}

func (rc *RouteClient) fetch(ctx context.Context, topic, dc string) (*nameserverpb.Route, error) {
	var errs []error
	for i, cl := range rc.c.clients {
		cctx, cancel := context.WithTimeout(ctx, rc.timeout)
		route, err := cl.GetRoute(cctx, &nameserverpb.GetRouteRequest{Topic: topic, Dc: dc})
		cancel()
		if err == nil {
			return route, nil
		}
		if status.Code(err) == codes.NotFound {
			return nil, fmt.Errorf("%w: %s", ErrNoRoute, status.Convert(err).Message())
		}
		if status.Code(err) == codes.InvalidArgument {
			return nil, fmt.Errorf("%w: %s", ErrInvalid, status.Convert(err).Message())
		}
		errs = append(errs, fmt.Errorf("%s: %w", rc.c.addrs[i], err))
	}
	return nil, fmt.Errorf("%w: route of %q: %w", ErrUnavailable, topic, errors.Join(errs...))
}
