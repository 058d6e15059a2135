package controller

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// etcdLeaderCheck is how often the leading controller checks where the
// etcd leadership is.
const etcdLeaderCheck = 2 * time.Second

// keepEtcdLeader moves the etcd leadership to the preferred member while
// this candidate leads, whenever that member is up and another one leads.
func (c *Controller) keepEtcdLeader(t *term) {
	if c.cfg.PreferredEtcdLeader == "" {
		return
	}
	for {
		if err := c.moveEtcdLeader(t.ctx); err != nil && t.ctx.Err() == nil {
			c.log.Debug("etcd leadership not moved", "preferred", c.cfg.PreferredEtcdLeader, "err", err)
		}
		select {
		case <-t.ctx.Done():
			return
		case <-c.clock.After(etcdLeaderCheck):
		}
	}
}

func (c *Controller) moveEtcdLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	ml, err := c.cli.MemberList(ctx)
	if err != nil {
		return err
	}
	var want uint64
	urls := map[uint64]string{}
	for _, m := range ml.Members {
		if len(m.ClientURLs) > 0 {
			urls[m.ID] = m.ClientURLs[0]
		}
		if m.Name == c.cfg.PreferredEtcdLeader {
			want = m.ID
		}
	}
	if want == 0 || urls[want] == "" {
		return nil
	}
	st, err := c.cli.Status(ctx, urls[want])
	if err != nil || st.Leader == want || urls[st.Leader] == "" {
		return err
	}
	// MoveLeader is served by the current leader only; the client's
	// balancer spreads calls over the members, so a few tries reach it.
	for range 2 * len(ml.Members) {
		if _, err = c.cli.MoveLeader(ctx, want); !errors.Is(err, rpctypes.ErrNotLeader) {
			break
		}
	}
	if err != nil {
		return err
	}
	c.log.Info("etcd leadership moved to the preferred member", "member", c.cfg.PreferredEtcdLeader)
	return nil
}
