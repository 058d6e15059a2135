package controller_test

import (
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

// A DC's health has three signals besides "no live broker": too few live
// brokers (min-live-brokers), too few live proxies (min-live-proxies) and
// no reachable etcd member (etcd-member-required). A DC unhealthy for
// down-after whose brokers are still live is failed over the forced way:
// its topic is blocked and its live brokers fenced before the promotion.
func TestHealthSignals(t *testing.T) {
	newEnv := sharedEnv(t)
	t.Run("too few live brokers", func(t *testing.T) {
		e := newEnv(t)
		cfg := testConfig("c1")
		cfg.MinLiveBrokers = 2
		c := e.start(cfg, noHooks)
		e.leader(c)
		e.dcHealthy(c, dcA)
		if c.counter("duomq_controller_dc_healthy", "dc_name", dcA) != 1 {
			t.Fatal("idc-a not exported healthy")
		}
		if _, err := e.cli.Delete(e.ctx(), e.store.Key(meta.KeyAlive+dcA+"/b1")); err != nil {
			t.Fatal(err)
		}
		e.forcedFailoverOfA("min-live-brokers")
		if c.counter("duomq_controller_dc_healthy", "dc_name", dcA) != 0 || c.counter("duomq_controller_dc_healthy", "dc_name", dcB) != 1 {
			t.Fatal("dc health gauges do not show idc-a unhealthy and idc-b healthy")
		}
	})
	t.Run("no live proxy", func(t *testing.T) {
		e := newEnv(t)
		e.proxy(dcA, "p1")
		e.proxy(dcB, "p1")
		cfg := testConfig("c1")
		cfg.MinLiveProxies = 1
		c := e.start(cfg, noHooks)
		e.leader(c)
		e.dcHealthy(c, dcA)
		if c.counter("duomq_controller_dc_live_proxies", "dc_name", dcA) != 1 {
			t.Fatal("idc-a's proxy not counted")
		}
		if o := e.ordered(); o.Primary != dcA || o.Epoch != 1 {
			t.Fatalf("failed over while idc-a had a proxy: %+v", o)
		}
		if _, err := e.cli.Delete(e.ctx(), e.store.Key(meta.KeyProxies+dcA+"/p1")); err != nil {
			t.Fatal(err)
		}
		e.forcedFailoverOfA("min-live-proxies")
	})
}

// The etcd member of idc-a (named after it) stops answering: with
// etcd-member-required the DC is unhealthy although its brokers' records
// live on (their leases are kept by the quorum).
func TestHealthEtcdMemberRequired(t *testing.T) {
	e := newEnv(t)
	cfg := testConfig("c1")
	cfg.EtcdMemberRequired = true
	cfg.EtcdProbeInterval = 100 * time.Millisecond
	c := e.start(cfg, noHooks)
	e.leader(c)
	e.dcHealthy(c, dcA)
	for i := range e.etcd.Size() {
		if e.etcd.Config(i).Name == dcA {
			e.etcd.Kill(i)
		}
	}
	e.forcedFailoverOfA("etcd member")
}

// dcHealthy waits until the controller's status shows dc healthy.
func (e *env) dcHealthy(c cand, dc string) {
	e.t.Helper()
	etcdtest.Eventually(e.t, wait, func() bool {
		st, err := c.Status(e.ctx())
		if err != nil {
			return false
		}
		for _, d := range st.DCs {
			if d.Name == dc {
				return len(d.Unhealthy) == 0 && len(d.Alive) > 0
			}
		}
		return false
	}, "%s not healthy in the status", dc)
}

// proxy puts a proxy's liveness record under a lease of its own.
func (e *env) proxy(dc, id string) {
	e.t.Helper()
	l, err := e.cli.Grant(e.ctx(), 60)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.cli.Put(e.ctx(), e.store.Key(meta.KeyProxies+dc+"/"+id), `{"version":1}`, clientv3.WithLease(l.ID)); err != nil {
		e.t.Fatal(err)
	}
}

// forcedFailoverOfA waits until orders moved from idc-a (still with live
// brokers) to idc-b the forced way and idc-a is down, the audit naming why.
func (e *env) forcedFailoverOfA(why string) {
	e.t.Helper()
	// The DC may be marked down before its topic's transition ends (a
	// later pass finds no topic left to move): wait for both.
	// Reads may fail while the client moves off a killed etcd member.
	etcdtest.Eventually(e.t, wait, func() bool {
		o, _, err := e.store.GetOrdered(e.ctx(), topic)
		return err == nil && o.Primary == dcB && !o.Blocked
	}, "orders not promoted in idc-b")
	etcdtest.Eventually(e.t, wait, func() bool {
		d, _, err := e.store.GetDC(e.ctx(), dcA)
		return err == nil && d.State == meta.DCDown
	}, "idc-a not marked down")
	if o := e.ordered(); o.Primary != dcB || o.Epoch != 3 || o.Blocked {
		e.t.Fatalf("record after the failover %+v: want idc-b at epoch 3 (block, then promote), unblocked", o)
	}
	if len(e.brokers.Fences()) == 0 {
		e.t.Fatal("the live brokers of idc-a were not fenced")
	}
	var rec controller.AuditRecord
	etcdtest.Eventually(e.t, wait, func() bool {
		var ok bool
		rec, ok = e.lastAudit("failover")
		return ok && rec.Topic == topic
	}, "no failover audit record of %s", topic)
	if !strings.Contains(rec.Reason, why) {
		e.t.Fatalf("failover reason %q does not say %q", rec.Reason, why)
	}
}
