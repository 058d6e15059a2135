package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/duomq/duomq/dr/meta"
)

// LeaderInfo is the value of the election key: who leads and where its
// API is.
type LeaderInfo struct {
	ID     string `json:"id"`
	APIURL string `json:"api_url"`
}

// electionPrefix is where the candidates' keys live.
func (c *Controller) electionPrefix() string { return c.store.Key(meta.KeyControllerLeader) }

// Leader returns the current leader, or ok=false when none is elected.
func (c *Controller) Leader(ctx context.Context) (LeaderInfo, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	return ReadLeader(ctx, c.cli, c.store)
}

// ReadLeader returns the elected controller leader from the metadata
// (ok=false when none is), for observers that do not run a controller.
func ReadLeader(ctx context.Context, cli *clientv3.Client, store *meta.Store) (LeaderInfo, bool, error) {
	resp, err := cli.Get(clientv3.WithRequireLeader(ctx), store.Key(meta.KeyControllerLeader)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return LeaderInfo{}, false, errorf(meta.ErrUnavailable, "read controller leader: %v", err)
	}
	if len(resp.Kvs) == 0 {
		return LeaderInfo{}, false, nil
	}
	var li LeaderInfo
	if err := json.Unmarshal(resp.Kvs[0].Value, &li); err != nil {
		return LeaderInfo{}, false, fmt.Errorf("%w: controller leader key: %v", meta.ErrCorrupt, err)
	}
	return li, true, nil
}

// campaign stands for election again and again until ctx ends, leading
// whenever elected.
func (c *Controller) campaign(ctx context.Context) error {
	val, err := json.Marshal(LeaderInfo{ID: c.cfg.ID, APIURL: c.cfg.APIURL})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		if err := c.campaignOnce(ctx, string(val)); err != nil && ctx.Err() == nil {
			c.log.Warn("election attempt failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-c.clock.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// campaignOnce runs one election session: campaign, lead until the
// session ends or ctx does, then resign and revoke the session's lease.
func (c *Controller) campaignOnce(ctx context.Context, val string) error {
	ttl := int64(c.cfg.ElectionTTL / time.Second)
	gctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), c.cfg.ElectionTTL)
	lease, err := c.cli.Grant(gctx, ttl)
	cancel()
	if err != nil {
		return fmt.Errorf("grant election lease: %w", err)
	}
	// The session outlives ctx so that Close can resign and revoke.
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	sess, err := concurrency.NewSession(c.cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(int(ttl)), concurrency.WithContext(sctx))
	if err != nil {
		return fmt.Errorf("election session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, c.electionPrefix())
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	stop := context.AfterFunc(sess.Ctx(), ccancel)
	defer stop()
	if err := el.Campaign(cctx, val); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	lerr := c.lead(cctx, el)
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	defer rcancel()
	if err := el.Resign(rctx); err != nil {
		c.log.Debug("resign failed; the session's lease ends the leadership", "err", err)
	}
	return lerr
}

// lead runs one term: resume what controller/state holds, then evaluate
// the DCs' health until ctx ends (the session ended, or Close). Running
// transitions stop where they are.
func (c *Controller) lead(ctx context.Context, el *concurrency.Election) error {
	t := newTerm(c, ctx, el.Key(), el.Rev())
	defer func() {
		t.cancel()
		t.wg.Wait()
	}()
	c.log.Info("leading", "election-key", el.Key())
	if err := t.resume(); err != nil {
		return fmt.Errorf("resume transitions: %w", err)
	}
	c.mu.Lock()
	c.term = t
	c.mu.Unlock()
	c.m.leader.Set(1)
	c.leaderLoop(t)
	c.mu.Lock()
	c.term = nil
	c.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	c.m.leader.Set(0)
	c.log.Info("leadership ended")
	return nil
}
