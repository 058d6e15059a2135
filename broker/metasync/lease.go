package metasync

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/dr/meta"
)

// Lease keeps a broker's liveness record (meta.Alive) under an etcd lease
// and renews the broker's permission to take ordered writes with every
// successful renewal. Invariant: the broker's own lease ends at most TTL
// after a renewal request was sent, and the quorum expires the record no
// earlier than TTL after it received that request, so the broker stops
// taking ordered writes no later than its record disappears.
type Lease struct {
	store   *meta.Store
	b       *broker.Broker
	addr    string
	ttl     time.Duration
	log     *slog.Logger
	started time.Time
}

// NewLease returns a lease keeper for b, announced at addr. It enables
// the broker's lease checks at once, so b takes no ordered write until
// the first renewal. ttl is rounded up to whole seconds for etcd.
func NewLease(store *meta.Store, b *broker.Broker, addr string, ttl time.Duration, logger *slog.Logger) *Lease {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b.EnableLease(ttl)
	return &Lease{store: store, b: b, addr: addr, ttl: ttl, started: time.Now().UTC(),
		log: logger.With("subsystem", "lease", "broker", b.Name())}
}

// Run keeps the lease until ctx ends, then revokes it so the record goes
// at once.
func (l *Lease) Run(ctx context.Context) error {
	cli := l.store.Client()
	var id clientv3.LeaseID
	defer func() {
		if id != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			cli.Revoke(rctx, id)
		}
	}()
	tick := time.NewTicker(l.ttl / 4)
	defer tick.Stop()
	for {
		sent := time.Now()
		var err error
		if id == 0 {
			id, err = l.grant(ctx, cli)
		} else {
			err = l.renew(ctx, cli, id)
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				l.log.Warn("liveness lease expired; granting a new one")
				id = 0
			}
		}
		if err == nil {
			l.b.RenewLease(sent)
		} else if ctx.Err() == nil {
			l.log.Warn("liveness lease not renewed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (l *Lease) grant(ctx context.Context, cli *clientv3.Client) (clientv3.LeaseID, error) {
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), l.ttl/2)
	defer cancel()
	resp, err := cli.Grant(rctx, int64(math.Ceil(l.ttl.Seconds())))
	if err != nil {
		return 0, err
	}
	a := meta.Alive{Name: l.b.Name(), DC: l.b.DC(), Address: l.addr, Started: l.started, Set: l.b.Config().ReplicaSet}
	if err := l.store.PutAlive(rctx, resp.ID, a); err != nil {
		cli.Revoke(rctx, resp.ID)
		return 0, err
	}
	l.log.Info("liveness lease granted", "lease", int64(resp.ID), "ttl", l.ttl)
	return resp.ID, nil
}

func (l *Lease) renew(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID) error {
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), l.ttl/4)
	defer cancel()
	_, err := cli.KeepAliveOnce(rctx, id)
	return err
}
