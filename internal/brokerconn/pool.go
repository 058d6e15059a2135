// Package brokerconn keeps one gRPC connection per broker address for the
// components that talk to many brokers (replicator, controller).
package brokerconn

import (
	"sync"

	"google.golang.org/grpc"
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

// New returns a pool dialing with opts (default: plaintext, large
// messages).
func New(opts ...grpc.DialOption) *Pool {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes), grpc.MaxCallSendMsgSize(maxRecvBytes))}
	}
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
