package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
)

// leaderLoop evaluates the DCs whenever liveness or the metadata changes,
// and at least every quarter of down-after, until the term ends.
func (c *Controller) leaderLoop(t *term) {
	done := make(chan struct{})
	go func() { defer close(done); c.keepEtcdLeader(t) }()
	defer func() { <-done }()
	sub, unsub := c.cache.Subscribe()
	defer unsub()
	tick := min(max(c.cfg.DownAfter/4, 10*time.Millisecond), 500*time.Millisecond)
	var checked time.Time
	for {
		changed := c.health.changed()
		c.autoPass(t)
		if now := c.clock.Now(); now.Sub(checked) >= handOverCheck {
			checked = now
			if c.handOver(t) {
				return
			}
		}
		select {
		case <-t.ctx.Done():
			return
		case <-changed:
		case <-sub:
		case <-c.clock.After(tick):
		}
	}
}

// handOverCheck is how often a leader that is not the preferred one
// looks for it.
const handOverCheck = 500 * time.Millisecond

// handOver reports whether this leader should step down for the preferred
// candidate: it is campaigning, and no transition is running here.
func (c *Controller) handOver(t *term) bool {
	pref := c.cfg.PreferredLeader
	if pref == "" || pref == c.cfg.ID || len(t.transitions()) > 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(t.ctx, c.cfg.MetaTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.electionPrefix()+"/", clientv3.WithPrefix())
	if err != nil {
		return false
	}
	for _, kv := range resp.Kvs {
		var li LeaderInfo
		if json.Unmarshal(kv.Value, &li) == nil && li.ID == pref {
			c.log.Info("handing the leadership over to the preferred candidate", "preferred", pref)
			return true
		}
	}
	return false
}

// autoPass fails over DCs that are down and fails back DCs that returned,
// as configured. It reads the watched cache; only a DC that needs a change
// costs metadata reads.
func (c *Controller) autoPass(t *term) {
	if !c.cfg.AutoFailover && !c.cfg.AutoFailback {
		return
	}
	now := c.clock.Now()
	for _, d := range c.cache.DCs() {
		if now.Before(t.autoNext[d.Name]) {
			continue
		}
		h := c.health.get(d.Name)
		var err error
		switch {
		case c.cfg.AutoFailover && c.isDown(h, now):
			err = c.autoFailover(t, d, h, now)
		case c.cfg.AutoFailback && d.State == meta.DCDown && len(h.Unhealthy) == 0 && now.Sub(h.UpSince) >= c.cfg.DownAfter:
			err = c.autoFailback(t, d, h)
		default:
			continue
		}
		if err != nil {
			t.autoNext[d.Name] = now.Add(c.cfg.DownAfter)
			if !errors.Is(err, ErrPrimaryAlive) && t.ctx.Err() == nil {
				c.log.Warn("automatic change of a dc not possible now", "dc", d.Name, "err", err)
			}
		}
	}
}

// pendingTopics lists, from the cache, the ordered topics keep selects
// that have no transition running.
func (c *Controller) pendingTopics(t *term, keep func(meta.Topic, meta.Ordered) bool) int {
	n := 0
	for _, tp := range c.cache.Topics() {
		if !tp.Ordered || t.busy(tp.Name) {
			continue
		}
		if rec, _, ok := c.cache.Ordered(tp.Name); ok && keep(tp, rec) {
			n++
		}
	}
	return n
}

// autoFailover fails over every ordered topic led by a DC that has been
// unhealthy for down-after, and marks it down. A DC whose brokers are
// still live (too few of them, no proxy, no reachable etcd member) is
// failed over the forced way: its topics are blocked and fenced, and the
// new primary waits out the brokers' lease.
func (c *Controller) autoFailover(t *term, d meta.DC, h DCHealth, now time.Time) error {
	pending := c.pendingTopics(t, func(_ meta.Topic, o meta.Ordered) bool { return o.Primary == d.Name })
	if pending == 0 && d.State == meta.DCDown {
		return nil
	}
	req := FailoverRequest{DC: d.Name, Actor: "controller", Force: len(h.Alive) > 0,
		Reason: fmt.Sprintf("unhealthy since %s (down-after %v): %s", h.DownSince.UTC().Format(time.RFC3339Nano), c.cfg.DownAfter, strings.Join(h.Unhealthy, "; "))}
	trs, err := c.planFailover(t.ctx, t, req, true, now)
	if err != nil {
		return err
	}
	c.log.Warn("dc is down: failing over", "dc", d.Name, "topics", len(trs), "down-since", h.DownSince)
	if len(trs) == 0 {
		_, err := c.setDCDirect(t.ctx, t, d.Name, meta.DCDown, AuditDCDown, req.Actor, req.Reason)
		return err
	}
	return c.launchAuto(t, trs)
}

// autoFailback fails back a down DC that has been healthy again for
// down-after.
func (c *Controller) autoFailback(t *term, d meta.DC, h DCHealth) error {
	req := FailbackRequest{DC: d.Name, Actor: "controller",
		Reason: fmt.Sprintf("healthy again since %s", h.UpSince.UTC().Format(time.RFC3339Nano))}
	trs, err := c.planFailback(t.ctx, t, req, true)
	if err != nil {
		return err
	}
	c.log.Info("dc returned: failing back", "dc", d.Name, "topics", len(trs))
	if len(trs) == 0 {
		_, err := c.setDCDirect(t.ctx, t, d.Name, meta.DCActive, AuditDCActive, req.Actor, req.Reason)
		return err
	}
	return c.launchAuto(t, trs)
}

// launchAuto starts automatic transitions without waiting for them.
func (c *Controller) launchAuto(t *term, trs []*Transition) error {
	if err := t.reserve(trs); err != nil {
		return err
	}
	_, err := t.launch(trs)
	return err
}
