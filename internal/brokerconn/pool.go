// Package brokerconn keeps one gRPC connection per broker address for the
// components that talk to many brokers (replicator, controller).
package brokerconn

import (
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/internal/wanroute"
)

// maxRecvBytes admits a full fetch page (64 MiB) plus framing.
const maxRecvBytes = 66 << 20

// Pool dials brokers lazily and reuses the connections. It is safe for
// concurrent use.
type Pool struct {
	opts  []grpc.DialOption
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// Reconnect is how a connection to a broker that went away tries again:
// every second at most. gRPC's default backoff grows to two minutes, so a
// broker restarted after a while (a standby back in its replica set, a
// DC's brokers after an outage) stayed unreachable long after it served
// again, and its copies fell behind.
func Reconnect() grpc.DialOption {
	return grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
		MinConnectTimeout: 2 * time.Second,
	})
}

// New returns a pool dialing with opts (default: plaintext, large
// messages), and Reconnect's backoff.
func New(opts ...grpc.DialOption) *Pool {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes), grpc.MaxCallSendMsgSize(maxRecvBytes))}
	}
	opts = append(append([]grpc.DialOption{}, opts...), Reconnect())
	return &Pool{opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// Client returns a client of the broker at addr.
func (p *Pool) Client(addr string) (brokerpb.BrokerClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cc, ok := p.conns[addr]
	if !ok {
		var err error
		if cc, err = grpc.NewClient(wanroute.Rewrite(addr), p.opts...); err != nil {
			return nil, err
		}
		p.conns[addr] = cc
	}
	return brokerpb.NewBrokerClient(cc), nil
}

// Close closes every connection; the pool stays usable (it dials again).
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cc := range p.conns {
		cc.Close()
		delete(p.conns, addr)
	}
	return nil
}
