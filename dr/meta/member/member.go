package member

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

// closeGrace is how long Close lets client RPCs (watch streams, mostly)
// finish before cutting them; etcd itself would wait its request timeout
// (5 s + 2 election timeouts).
const closeGrace = 500 * time.Millisecond

// Member is one running embedded etcd member.
type Member struct {
	cfg  Config
	etcd *embed.Etcd

	mu    sync.Mutex
	grpcs []*grpc.Server // the member's client gRPC servers, for fast stops

	stopOnce sync.Once
}

// Start validates cfg, starts the member and waits until it is ready to
// serve clients: joined to a cluster that has a quorum. It fails when ctx
// ends or cfg.StartTimeout passes first; the member is then stopped.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Member{cfg: cfg}
	ecfg, err := m.embedConfig()
	if err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		return nil, fmt.Errorf("etcd member %s: start: %w", cfg.Name, err)
	}
	m.etcd = e

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	select {
	case <-e.Server.ReadyNotify():
		return m, nil
	case err := <-e.Err():
		m.HardStop()
		return nil, fmt.Errorf("etcd member %s: failed while starting: %w", cfg.Name, err)
	case <-ctx.Done():
		m.HardStop()
		return nil, fmt.Errorf("%w: member %s: %v; a quorum of %v must be reachable at their peer URLs",
			ErrNotReady, cfg.Name, ctx.Err(), cfg.initialClusterString())
	}
}

func (m *Member) embedConfig() (*embed.Config, error) {
	c := m.cfg
	ec := embed.NewConfig()
	ec.Name = c.Name
	ec.Dir = c.DataDir
	ec.InitialCluster = c.initialClusterString()
	ec.InitialClusterToken = c.ClusterToken
	ec.ClusterState = c.ClusterState
	ec.TickMs = uint(c.HeartbeatInterval / time.Millisecond)
	ec.ElectionMs = uint(c.ElectionTimeout / time.Millisecond)
	if c.AuthToken != "" {
		ec.AuthToken = c.AuthToken
	}
	if c.CompactionRetention > 0 {
		ec.AutoCompactionMode = embed.CompactorModePeriodic
		ec.AutoCompactionRetention = c.CompactionRetention.String()
	}
	// Clients probe their connections every second (meta.ClientConfig) to
	// leave a member behind a cut link quickly; etcd's default minimum of
	// 5 s would answer such pings with GOAWAY (too many pings).
	ec.GRPCKeepAliveMinTime = 500 * time.Millisecond
	// duomq speaks gRPC only; the HTTP gateway would add goroutines and a
	// loopback client connection per member.
	ec.EnableGRPCGateway = false
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zapLogger(c.Logger, c.Name))
	ec.ServiceRegister = m.register

	cu, err := url.Parse(c.ClientURL)
	if err != nil {
		return nil, err
	}
	pu, err := url.Parse(c.PeerURL)
	if err != nil {
		return nil, err
	}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	ec.ClientTLSInfo = tlsInfo(c.ClientTLS)
	ec.PeerTLSInfo = tlsInfo(c.PeerTLS)
	return ec, nil
}

func tlsInfo(t TLSConfig) transport.TLSInfo {
	return transport.TLSInfo{
		CertFile:       t.CertFile,
		KeyFile:        t.KeyFile,
		TrustedCAFile:  t.TrustedCAFile,
		ClientCertAuth: t.ClientCertAuth,
	}
}

// register is etcd's ServiceRegister hook: it hands over each client gRPC
// server, which lets Close and HardStop cut client streams at once.
func (m *Member) register(s *grpc.Server) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grpcs = append(m.grpcs, s)
}

// Name is the member's name.
func (m *Member) Name() string { return m.cfg.Name }

// ClientURL is the URL clients connect to.
func (m *Member) ClientURL() string { return m.cfg.ClientURL }

// PeerURL is the URL the other members connect to.
func (m *Member) PeerURL() string { return m.cfg.PeerURL }

// Ready is closed once the member serves clients.
func (m *Member) Ready() <-chan struct{} { return m.etcd.Server.ReadyNotify() }

// Err reports fatal errors of the running member; it is closed once the
// member has stopped.
func (m *Member) Err() <-chan error { return m.etcd.Err() }

// ID is the member's etcd member ID, as etcdctl member list prints it.
func (m *Member) ID() string { return m.etcd.Server.MemberID().String() }

// IsLeader reports whether the member is the raft leader as far as it knows.
func (m *Member) IsLeader() bool {
	s := m.etcd.Server
	return s.Leader() == s.MemberID()
}

// HasLeader reports whether the member knows a raft leader.
func (m *Member) HasLeader() bool { return m.etcd.Server.Leader() != 0 }

// leaderHandoff bounds a leader's attempt to hand over leadership when it
// stops. etcd's own attempt waits up to its request timeout (about 7 s)
// when no peer can take over, as when a whole topology stops at once.
const leaderHandoff = 500 * time.Millisecond

// Close stops the member gracefully: clients get a short grace period, then
// a leader hands leadership to a peer that answers within leaderHandoff
// before it stops. Safe to call twice, and after HardStop.
func (m *Member) Close() error {
	m.stopOnce.Do(func() {
		m.stopClients(closeGrace)
		if m.IsLeader() {
			m.handOff()
			// Raft stops here so etcd does not try its own, slower handoff;
			// the WAL already holds every committed entry.
			m.etcd.Server.HardStop()
		}
		m.etcd.Close()
	})
	return nil
}

// handOff moves leadership to the first peer that accepts it in time.
func (m *Member) handOff() {
	s := m.etcd.Server
	self := uint64(s.MemberID())
	ctx, cancel := context.WithTimeout(context.Background(), leaderHandoff)
	defer cancel()
	for _, p := range s.Cluster().Members() {
		if uint64(p.ID) == self || p.IsLearner {
			continue
		}
		if err := s.MoveLeader(ctx, self, uint64(p.ID)); err == nil {
			return
		}
	}
}

// HardStop simulates a crash: raft stops at once without handing over
// leadership, client connections are cut, and the listeners are released so
// a restart can bind the same ports. The data directory keeps what was
// fsynced.
func (m *Member) HardStop() {
	m.stopOnce.Do(func() {
		m.etcd.Server.HardStop()
		m.stopClients(0)
		// With raft stopped, Close skips the leadership transfer (there is no
		// active peer to hand over to) and only releases resources.
		m.etcd.Close()
	})
}

// stopClients stops the client gRPC servers: gracefully within grace, then
// by closing their connections.
func (m *Member) stopClients(grace time.Duration) {
	m.mu.Lock()
	servers := append([]*grpc.Server(nil), m.grpcs...)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() {
			if grace <= 0 {
				s.Stop()
				return
			}
			done := make(chan struct{})
			go func() {
				s.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(grace):
				s.Stop()
				<-done
			}
		})
	}
	wg.Wait()
}
