package proxy

import (
	"context"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/internal/names"
)

// maxClientIDLen bounds client ids and other client-given labels.
const maxClientIDLen = 256

// registry holds the clients that heartbeat this proxy and when each
// consumer group last showed a live consumer here.
type registry struct {
	ttl, groupTTL time.Duration
	now           func() time.Time

	mu      sync.Mutex
	clients map[string]*proxypb.ClientStatus
	groups  map[string]time.Time
}

func newRegistry(ttl, groupTTL time.Duration, now func() time.Time) *registry {
	return &registry{ttl: ttl, groupTTL: groupTTL, now: now, clients: map[string]*proxypb.ClientStatus{}, groups: map[string]time.Time{}}
}

// heartbeat records a client and reports whether one of its groups was
// not live here before.
func (r *registry) heartbeat(c *proxypb.ClientInfo, dc string) bool {
	now := r.now()
	r.mu.Lock()
	r.clients[c.GetClientId()] = &proxypb.ClientStatus{Client: c, ProxyDc: dc, LastHeartbeatUnixNano: now.UnixNano()}
	r.mu.Unlock()
	fresh := false
	for _, g := range c.GetConsumerGroups() {
		fresh = r.touchGroup(g) || fresh
	}
	return fresh
}

// touchGroup records a live consumer of group (a receive or an ack) and
// reports whether the group was not live here before.
func (r *registry) touchGroup(group string) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.groups[group]
	r.groups[group] = now
	return !ok || now.Sub(at) >= r.groupTTL
}

// liveGroups are the groups with a consumer seen within the group TTL.
func (r *registry) liveGroups() []string {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for g, at := range r.groups {
		if now.Sub(at) < r.groupTTL {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// sweep forgets expired clients and groups.
func (r *registry) sweep() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, c := range r.clients {
		if now.Sub(time.Unix(0, c.GetLastHeartbeatUnixNano())) >= r.ttl {
			delete(r.clients, id)
		}
	}
	for g, at := range r.groups {
		if now.Sub(at) >= r.groupTTL {
			delete(r.groups, g)
		}
	}
}

func (r *registry) list() []*proxypb.ClientStatus {
	r.sweep()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*proxypb.ClientStatus, 0, len(r.clients))
	for _, c := range r.clients {
		out = append(out, proto.Clone(c).(*proxypb.ClientStatus))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetClient().GetClientId() < out[j].GetClient().GetClientId() })
	return out
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

// Heartbeat registers a client; its consumer groups count as live in this
// DC for the consumer TTL.
func (p *Proxy) Heartbeat(ctx context.Context, req *proxypb.HeartbeatRequest) (*proxypb.HeartbeatResponse, error) {
	c := req.GetClient()
	if id := c.GetClientId(); id == "" || len(id) > maxClientIDLen {
		return nil, errorf(ErrInvalidArgument, "heartbeat: client.client_id must be 1 to %d bytes", maxClientIDLen)
	}
	for _, g := range c.GetConsumerGroups() {
		if err := names.Group(g); err != nil {
			return nil, errorf(ErrInvalidName, "heartbeat: consumer group: %v", err)
		}
	}
	if err := p.throttle.client(clientKey(ctx, c.GetClientId())); err != nil {
		p.metrics.throttled.WithLabelValues("client").Inc()
		return nil, err
	}
	c = proto.Clone(c).(*proxypb.ClientInfo)
	if c.Host == "" {
		c.Host = peerHost(ctx)
	}
	if p.clients.heartbeat(c, p.cfg.DC) {
		p.publishGroups()
	}
	return &proxypb.HeartbeatResponse{Dc: p.cfg.DC}, nil
}

// ListClients lists the clients that heartbeat this proxy within the
// client TTL.
func (p *Proxy) ListClients(context.Context, *proxypb.ListClientsRequest) (*proxypb.ListClientsResponse, error) {
	return &proxypb.ListClientsResponse{Clients: p.clients.list()}, nil
}

// ResolveIDC returns the DC whose CIDRs contain one of the addresses,
// trying the addresses in order and the DCs by name.
func (p *Proxy) ResolveIDC(_ context.Context, req *proxypb.ResolveIDCRequest) (*proxypb.ResolveIDCResponse, error) {
	if len(req.GetAddresses()) > 64 {
		return nil, errorf(ErrInvalidArgument, "resolve idc: %d addresses, at most 64", len(req.GetAddresses()))
	}
	dcs := p.meta.DCs()
	for _, a := range req.GetAddresses() {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, errorf(ErrInvalidArgument, "resolve idc: address %q: %v", a, err)
		}
		ip = ip.Unmap()
		for _, dc := range dcs {
			for _, c := range dc.CIDRs {
				pfx, err := netip.ParsePrefix(c)
				if err == nil && pfx.Contains(ip) {
					return &proxypb.ResolveIDCResponse{Idc: dc.Name, MatchedAddress: a, MatchedCidr: c}, nil
				}
			}
		}
	}
	return &proxypb.ResolveIDCResponse{}, nil
}

// clientKey names a caller for the per-client rate limit: its client id,
// else its host.
func clientKey(ctx context.Context, id string) string {
	if id != "" {
		return id
	}
	return peerHost(ctx)
}

func peerHost(ctx context.Context) string {
	pr, ok := peer.FromContext(ctx)
	if !ok || pr.Addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(pr.Addr.String())
	if err != nil {
		return pr.Addr.String()
	}
	return host
}

// publishGroups tells the presence at once that a group became live here.
func (p *Proxy) publishGroups() {
	if p.presence != nil {
		p.presence.SetLocal(p.clients.liveGroups())
	}
}
