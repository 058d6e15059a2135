package nameserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/internal/names"
	"google.golang.org/protobuf/proto"
)

// Config configures a nameserver.
type Config struct {
	// DC is the data center this nameserver serves (informational).
	DC string `mapstructure:"dc" json:"dc"`
	// Lease is how long a registration lives without a heartbeat.
	Lease time.Duration `mapstructure:"lease" json:"lease"`
	// SweepInterval is how often expired registrations are removed.
	SweepInterval time.Duration `mapstructure:"sweep-interval" json:"sweep-interval"`
}

// DefaultConfig: brokers heartbeat every 3 s, a lease lasts 10 s.
func DefaultConfig() Config {
	return Config{DC: "idc-a", Lease: 10 * time.Second, SweepInterval: time.Second}
}

// Validate reports the first bad field.
func (c *Config) Validate() error {
	if err := names.DC(c.DC); err != nil {
		return fmt.Errorf("nameserver config: dc: %w", err)
	}
	if c.Lease <= 0 || c.SweepInterval <= 0 {
		return fmt.Errorf("nameserver config: lease and sweep-interval must be positive")
	}
	return nil
}

type entry struct {
	reg     *nameserverpb.BrokerRegistration
	lastHB  time.Time
	expires time.Time
}

// Server is the nameserver's gRPC service and its lease table.
type Server struct {
	nameserverpb.UnimplementedNameserverServer
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	mu      sync.RWMutex
	brokers map[string]entry // key: dc + "/" + name
}

// New returns a nameserver. reg may be nil.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: logger.With("component", "nameserver", "dc", cfg.DC), now: time.Now, brokers: map[string]entry{}}
	s.metrics = newMetrics(reg, s)
	return s, nil
}

// SetClock replaces the clock (tests).
func (s *Server) SetClock(now func() time.Time) { s.now = now }

// Run sweeps expired leases until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sweep()
		}
	}
}

func (s *Server) sweep() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.brokers {
		if !now.Before(e.expires) {
			delete(s.brokers, k)
			s.metrics.expired.Inc()
			s.log.Warn("broker lease expired", "broker", e.reg.GetName(), "broker-dc", e.reg.GetDc(), "last-heartbeat", e.lastHB)
		}
	}
}

func validateRegistration(r *nameserverpb.BrokerRegistration) error {
	if r == nil {
		return fmt.Errorf("%w: registration is missing", ErrInvalid)
	}
	if err := names.Group(r.GetName()); err != nil {
		return fmt.Errorf("%w: broker name: %v", ErrInvalid, err)
	}
	if err := names.DC(r.GetDc()); err != nil {
		return fmt.Errorf("%w: broker %s: %v", ErrInvalid, r.GetName(), err)
	}
	if _, _, err := net.SplitHostPort(r.GetAddress()); err != nil {
		return fmt.Errorf("%w: broker %s: address %q: %v", ErrInvalid, r.GetName(), r.GetAddress(), err)
	}
	for _, t := range r.GetTopics() {
		if err := names.Topic(t.GetName()); err != nil || t.GetQueues() == 0 {
			return fmt.Errorf("%w: broker %s: topic %q with %d queues", ErrInvalid, r.GetName(), t.GetName(), t.GetQueues())
		}
	}
	return nil
}

// Register records or renews a broker's registration.
func (s *Server) Register(_ context.Context, req *nameserverpb.RegisterRequest) (*nameserverpb.RegisterResponse, error) {
	r := req.GetBroker()
	if err := validateRegistration(r); err != nil {
		return nil, errTable.Status(err)
	}
	now := s.now()
	s.mu.Lock()
	_, known := s.brokers[r.GetDc()+"/"+r.GetName()]
	s.brokers[r.GetDc()+"/"+r.GetName()] = entry{reg: proto.Clone(r).(*nameserverpb.BrokerRegistration), lastHB: now, expires: now.Add(s.cfg.Lease)}
	s.mu.Unlock()
	s.metrics.heartbeats.Inc()
	if !known {
		s.log.Info("broker registered", "broker", r.GetName(), "broker-dc", r.GetDc(), "address", r.GetAddress(), "topics", len(r.GetTopics()))
	}
	return &nameserverpb.RegisterResponse{LeaseMillis: s.cfg.Lease.Milliseconds()}, nil
}

// Unregister removes a broker at once.
func (s *Server) Unregister(_ context.Context, req *nameserverpb.UnregisterRequest) (*nameserverpb.UnregisterResponse, error) {
	s.mu.Lock()
	delete(s.brokers, req.GetDc()+"/"+req.GetName())
	s.mu.Unlock()
	return &nameserverpb.UnregisterResponse{}, nil
}

// live returns the registrations whose lease has not expired, sorted.
func (s *Server) live(dc string) []entry {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]entry, 0, len(s.brokers))
	for _, e := range s.brokers {
		if now.Before(e.expires) && (dc == "" || e.reg.GetDc() == dc) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].reg, out[j].reg
		return a.GetDc() < b.GetDc() || a.GetDc() == b.GetDc() && a.GetName() < b.GetName()
	})
	return out
}

// GetRoute returns the live brokers hosting a topic.
func (s *Server) GetRoute(_ context.Context, req *nameserverpb.GetRouteRequest) (*nameserverpb.Route, error) {
	if err := names.Topic(req.GetTopic()); err != nil {
		return nil, errTable.Status(fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	s.metrics.routeLookups.Inc()
	route := &nameserverpb.Route{Topic: req.GetTopic()}
	for _, e := range s.live(req.GetDc()) {
		for _, t := range e.reg.GetTopics() {
			if t.GetName() == req.GetTopic() {
				route.Brokers = append(route.Brokers, &nameserverpb.BrokerRoute{
					Broker: e.reg.GetName(), Address: e.reg.GetAddress(), Dc: e.reg.GetDc(),
					Queues: t.GetQueues(), Perm: t.GetPerm() & e.reg.GetPerm(),
				})
			}
		}
	}
	if len(route.Brokers) == 0 {
		where := "any DC"
		if req.GetDc() != "" {
			where = "DC " + req.GetDc()
		}
		return nil, errTable.Status(fmt.Errorf("%w: no live broker in %s hosts topic %q", ErrNoRoute, where, req.GetTopic()))
	}
	return route, nil
}

// ListBrokers lists the live brokers.
func (s *Server) ListBrokers(_ context.Context, req *nameserverpb.ListBrokersRequest) (*nameserverpb.ListBrokersResponse, error) {
	out := &nameserverpb.ListBrokersResponse{}
	for _, e := range s.live(req.GetDc()) {
		out.Brokers = append(out.Brokers, &nameserverpb.BrokerStatus{
			Broker: e.reg, LastHeartbeatUnixNano: e.lastHB.UnixNano(), LeaseExpiresUnixNano: e.expires.UnixNano(),
		})
	}
	return out, nil
}

type metrics struct {
	heartbeats, expired, routeLookups prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		heartbeats:   prometheus.NewCounter(prometheus.CounterOpts{Name: "duomq_nameserver_heartbeats_total", Help: "Broker registrations received."}),
		expired:      prometheus.NewCounter(prometheus.CounterOpts{Name: "duomq_nameserver_expired_leases_total", Help: "Broker registrations dropped because their lease ended."}),
		routeLookups: prometheus.NewCounter(prometheus.CounterOpts{Name: "duomq_nameserver_route_lookups_total", Help: "Route look-ups served."}),
	}
	if reg != nil {
		reg.MustRegister(m.heartbeats, m.expired, m.routeLookups, prometheus.NewGaugeFunc(
			prometheus.GaugeOpts{Name: "duomq_nameserver_live_brokers", Help: "Brokers with a live lease."},
			func() float64 { return float64(len(s.live(""))) }))
	}
	return m
}
