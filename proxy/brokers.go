package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/internal/brokerconn"
	"github.com/duomq/duomq/internal/rpcerr"
	"github.com/duomq/duomq/internal/wanroute"
)

// brokerRef is one broker of a route.
type brokerRef struct {
	DC, Name, Addr string
	Queues         uint32
	Perm           uint32
}

func (b brokerRef) key() string { return b.DC + "/" + b.Name }

func (b brokerRef) writable() bool {
	return b.Perm&uint32(brokerpb.Permission_PERMISSION_WRITE) != 0 && b.Queues > 0
}

func (b brokerRef) readable() bool {
	return b.Perm&uint32(brokerpb.Permission_PERMISSION_READ) != 0 && b.Queues > 0
}

// brokerPool holds one connection per broker address and one circuit
// breaker per broker (DC and name). Its mutex is never held during a call.
type brokerPool struct {
	cfg     BreakerConfig
	dial    func(addr string) (*grpc.ClientConn, error)
	metrics *metrics

	mu       sync.Mutex
	conns    map[string]*grpc.ClientConn
	breakers map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]
	closed   bool
}

func newBrokerPool(cfg BreakerConfig, dial func(string) (*grpc.ClientConn, error), m *metrics) *brokerPool {
	if dial == nil {
		dial = func(addr string) (*grpc.ClientConn, error) {
			return grpc.NewClient(wanroute.Rewrite(addr), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(128<<20), grpc.MaxCallSendMsgSize(128<<20)),
				brokerconn.Reconnect())
		}
	}
	return &brokerPool{cfg: cfg, dial: dial, metrics: m, conns: map[string]*grpc.ClientConn{},
		breakers: map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]{}}
}

func (bp *brokerPool) client(addr string) (brokerpb.BrokerClient, error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if bp.closed {
		return nil, ErrClosed
	}
	cc, ok := bp.conns[addr]
	if !ok {
		var err error
		if cc, err = bp.dial(addr); err != nil {
			return nil, fmt.Errorf("dial broker %s: %w", addr, err)
		}
		bp.conns[addr] = cc
	}
	return brokerpb.NewBrokerClient(cc), nil
}

func (bp *brokerPool) breaker(b brokerRef) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	key := b.key()
	cb, ok := bp.breakers[key]
	if ok {
		return cb
	}
	gauge := bp.metrics.breakerState.WithLabelValues(b.DC, b.Name)
	gauge.Set(0)
	cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        key,
		MaxRequests: bp.cfg.Probes,
		Timeout:     bp.cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= bp.cfg.Failures },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			gauge.Set(float64(to))
		},
		IsSuccessful: func(err error) bool { return !brokerFailed(err) },
		IsExcluded:   canceled,
	})
	bp.breakers[key] = cb
	return cb
}

// open reports whether b's breaker refuses calls now (open, not yet
// half-open).
func (bp *brokerPool) open(b brokerRef) bool {
	return bp.breaker(b).State() == gobreaker.StateOpen
}

func (bp *brokerPool) close() {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.closed = true
	for addr, cc := range bp.conns {
		cc.Close()
		delete(bp.conns, addr)
	}
}

// errBreakerOpen marks a call the broker's breaker refused (not sent).
var errBreakerOpen = errors.New("circuit breaker open")

// call runs fn against broker b through its breaker and measures it.
func (p *Proxy) call(ctx context.Context, b brokerRef, name string, fn func(context.Context, brokerpb.BrokerClient) error) error {
	done, err := p.brokers.breaker(b).Allow()
	if err != nil {
		return fmt.Errorf("broker %s (%s) of %s: %w", b.Name, b.Addr, b.DC, errBreakerOpen)
	}
	cl, err := p.brokers.client(b.Addr)
	if err != nil {
		done(nil)
		return err
	}
	start := p.now()
	err = fn(ctx, cl)
	p.metrics.brokerDuration.WithLabelValues(b.DC, name).Observe(p.now().Sub(start).Seconds())
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up: says nothing about the broker.
		done(context.Canceled)
		return err
	}
	done(err)
	return err
}

// brokerFailed reports errors that say the broker is unreachable or not
// answering: they count against its breaker and let an unordered send try
// elsewhere. Any answer from the broker, refusals included, is not one:
// a sync topic whose follower DC is out of sync is refused at once, over
// and over, and must not open the breaker of a healthy broker (and hold
// up its other topics after the follower is back).
func brokerFailed(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errBreakerOpen) {
		return true
	}
	switch rpcerr.Reason(err) {
	case reasonBrokerReplicaTimeout, reasonBrokerLeaseExpired, reasonBrokerNotLeader, reasonBrokerStaleEpoch:
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

func canceled(err error) bool {
	return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}

// withTimeout is context.WithTimeout that keeps an earlier deadline.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
