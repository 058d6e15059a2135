package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
)

// healthRules are the thresholds under which a DC counts as unhealthy
// (Config: min-live-brokers, min-live-proxies, etcd-member-required).
type healthRules struct {
	minBrokers, minProxies int
	etcdMember             bool
}

// health follows three signals of each DC and remembers since when each
// DC has been unhealthy and since when healthy again:
//   - the brokers' liveness records (alive/<dc>/<broker>, each under its
//     broker's lease), through a watch: fewer than min-live-brokers live;
//   - the proxies' liveness records (proxies/<dc>/<id>, under each proxy's
//     presence lease), through a watch: fewer than min-live-proxies (0,
//     the default, leaves proxies out);
//   - the DC's etcd members (named <dc> or <dc>-...), probed from this
//     candidate every etcd-probe-interval: none reachable, when
//     etcd-member-required.
//
// Every candidate runs it, so a new leader knows how long a DC has been
// unhealthy. A DC only counts as down (isDown) after down-after of it.
type health struct {
	store *meta.Store
	clock Clock
	log   *slog.Logger
	m     *metrics
	rules healthRules
	probe time.Duration

	mu        sync.Mutex
	loadedAt  time.Time
	records   map[string]map[string]meta.Alive // dc -> broker -> record
	proxies   map[string]map[string]bool       // dc -> proxy id
	etcdDown  map[string]bool                  // dc -> none of its members answered the last probe
	unhealthy map[string][]string              // dc -> reasons at the last evaluation, while unhealthy
	zeroSince map[string]time.Time             // dc -> unhealthy since
	upSince   map[string]time.Time
	seen      map[string]bool // DCs that were healthy since the first load
	changedCh chan struct{}   // closed and replaced on every change
	readyCh   chan struct{}   // closed at the first load
}

func newHealth(store *meta.Store, clock Clock, log *slog.Logger, m *metrics, cfg Config) *health {
	return &health{
		store: store, clock: clock, log: log, m: m, probe: cfg.EtcdProbeInterval,
		rules:   healthRules{minBrokers: cfg.MinLiveBrokers, minProxies: cfg.MinLiveProxies, etcdMember: cfg.EtcdMemberRequired},
		records: map[string]map[string]meta.Alive{}, proxies: map[string]map[string]bool{}, etcdDown: map[string]bool{},
		unhealthy: map[string][]string{}, zeroSince: map[string]time.Time{}, upSince: map[string]time.Time{},
		seen: map[string]bool{}, changedCh: make(chan struct{}), readyCh: make(chan struct{}),
	}
}

// DCHealth is what the controller knows of one DC.
type DCHealth struct {
	// Alive are the DC's liveness records, sorted by broker name.
	Alive []meta.Alive `json:"alive"`
	// Proxies is the number of the DC's live proxies.
	Proxies int `json:"proxies"`
	// Unhealthy lists why the DC is unhealthy now (empty while healthy):
	// too few live brokers or proxies, no reachable etcd member.
	Unhealthy []string `json:"unhealthy,omitempty"`
	// DownSince is when the DC last became unhealthy (or when this
	// controller started watching, if it never saw it healthy); zero while
	// it is healthy.
	DownSince time.Time `json:"down_since,omitzero"`
	// UpSince is when the DC became healthy again after it was not.
	UpSince time.Time `json:"up_since,omitzero"`
	// NeverSeen: this candidate has not seen the DC healthy since it
	// started.
	NeverSeen bool `json:"never_seen,omitempty"`
}

// isDown reports whether a DC counts as down: unhealthy for down-after,
// or, for a DC never seen healthy by this candidate, for startup-grace (so
// that brokers starting after the controller are not failed over).
func (c *Controller) isDown(h DCHealth, now time.Time) bool {
	after := c.cfg.DownAfter
	if h.NeverSeen {
		after = max(after, c.cfg.StartupGrace)
	}
	return len(h.Unhealthy) > 0 && !h.DownSince.IsZero() && now.Sub(h.DownSince) >= after
}

// changed returns a channel closed at the next change.
func (h *health) changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changedCh
}

// alive returns a DC's alive brokers sorted by name.
func (h *health) alive(dc string) []meta.Alive {
	return h.get(dc).Alive
}

func (h *health) get(dc string) DCHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := DCHealth{UpSince: h.upSince[dc], NeverSeen: !h.seen[dc], Proxies: len(h.proxies[dc]), Unhealthy: h.reasonsLocked(dc)}
	for _, a := range h.records[dc] {
		out.Alive = append(out.Alive, a)
	}
	sort.Slice(out.Alive, func(i, j int) bool { return out.Alive[i].Name < out.Alive[j].Name })
	if len(out.Unhealthy) > 0 {
		out.DownSince = h.zeroSince[dc]
		if out.DownSince.IsZero() {
			out.DownSince = h.loadedAt
		}
		out.UpSince = time.Time{}
	}
	return out
}

// reasons lists why dc is unhealthy under the rules; h.mu is held.
func (h *health) reasonsLocked(dc string) []string {
	var out []string
	if n := len(h.records[dc]); n < h.rules.minBrokers {
		out = append(out, fmt.Sprintf("%d live brokers (min-live-brokers %d)", n, h.rules.minBrokers))
	}
	if n := len(h.proxies[dc]); h.rules.minProxies > 0 && n < h.rules.minProxies {
		out = append(out, fmt.Sprintf("%d live proxies (min-live-proxies %d)", n, h.rules.minProxies))
	}
	if h.rules.etcdMember && h.etcdDown[dc] {
		out = append(out, "no etcd member of the dc reachable (etcd-member-required)")
	}
	return out
}

// run follows the brokers' and proxies' records and probes the etcd
// members of the DCs dcs names until ctx ends.
func (h *health) run(ctx context.Context, dcs func() []string) error {
	var wg sync.WaitGroup
	brokersLoaded := make(chan struct{})
	wg.Go(func() {
		h.follow(ctx, meta.KeyAlive, brokersLoaded, func(dc, name string, val []byte) bool {
			var a meta.Alive
			if val == nil {
				delete(h.records[dc], name)
				return true
			}
			if err := json.Unmarshal(val, &a); err != nil {
				h.log.Warn("skipping undecodable liveness record", "dc", dc, "broker", name, "err", err)
				return false
			}
			if h.records[dc] == nil {
				h.records[dc] = map[string]meta.Alive{}
			}
			h.records[dc][name] = a
			return true
		}, func() { h.records = map[string]map[string]meta.Alive{} })
	})
	proxiesLoaded := make(chan struct{})
	wg.Go(func() {
		h.follow(ctx, meta.KeyProxies, proxiesLoaded, func(dc, id string, val []byte) bool {
			if val == nil {
				delete(h.proxies[dc], id)
				return true
			}
			if h.proxies[dc] == nil {
				h.proxies[dc] = map[string]bool{}
			}
			h.proxies[dc][id] = true
			return true
		}, func() { h.proxies = map[string]map[string]bool{} })
	})
	if h.rules.etcdMember {
		wg.Go(func() { h.pollMembers(ctx, dcs) })
	}
	select {
	case <-brokersLoaded:
		select {
		case <-proxiesLoaded:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	if ctx.Err() == nil {
		h.mu.Lock()
		h.loadedAt = h.clock.Now()
		h.evaluateLocked()
		close(h.readyCh)
		h.mu.Unlock()
	}
	wg.Wait()
	return nil
}

// follow lists the records under rel, then watches them, listing again
// whenever the watch breaks (no leader, compaction), until ctx ends. set
// applies one record (nil value: deleted) and reports whether it did;
// reset empties the view before a listing. loaded is closed after the
// first listing.
func (h *health) follow(ctx context.Context, rel string, loaded chan struct{}, set func(dc, name string, val []byte) bool, reset func()) {
	prefix := h.store.Key(rel)
	first := true
	apply := func(key string, val []byte) bool {
		dc, name, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		return ok && set(dc, name, val)
	}
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := h.store.Client().Get(lctx, prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			h.log.Warn("cannot list liveness records; retrying", "prefix", rel, "err", err)
			select {
			case <-ctx.Done():
			case <-h.clock.After(200 * time.Millisecond):
			}
			continue
		}
		h.mu.Lock()
		reset()
		for _, kv := range resp.Kvs {
			apply(string(kv.Key), kv.Value)
		}
		h.evaluateLocked()
		h.mu.Unlock()
		if first {
			first = false
			close(loaded)
		}
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range h.store.Client().Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				h.log.Debug("liveness watch broke; listing again", "prefix", rel, "err", wr.Err())
				break
			}
			h.mu.Lock()
			for _, ev := range wr.Events {
				val := ev.Kv.Value
				if ev.Type == mvccpb.DELETE {
					val = nil
				}
				apply(string(ev.Kv.Key), val)
			}
			h.evaluateLocked()
			h.mu.Unlock()
		}
		wcancel()
	}
}

// pollMembers asks every etcd member for its status each probe interval
// and notes the DCs none of whose members answered.
func (h *health) pollMembers(ctx context.Context, dcs func() []string) {
	cli := h.store.Client()
	for {
		pctx, cancel := context.WithTimeout(ctx, min(h.probe, memberProbeTimeout))
		st, err := probeMembers(pctx, cli)
		down := map[string]bool{}
		if err == nil {
			up := map[string]bool{}
			for name, s := range st {
				dc := memberDC(name, dcs())
				if dc == "" {
					continue
				}
				down[dc] = true
				if s.ok {
					up[dc] = true
				}
			}
			for dc := range up {
				delete(down, dc)
			}
		}
		cancel()
		if err == nil {
			h.mu.Lock()
			if !maps.Equal(down, h.etcdDown) {
				h.etcdDown = down
				h.evaluateLocked()
			}
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-h.clock.After(h.probe):
		}
	}
}

// memberDC is the DC an etcd member belongs to by its name: "<dc>" or
// "<dc>-<anything>" (the longest such DC name); "" for the witness and
// others.
func memberDC(name string, dcs []string) string {
	best := ""
	for _, dc := range dcs {
		if (name == dc || strings.HasPrefix(name, dc+"-")) && len(dc) > len(best) {
			best = dc
		}
	}
	return best
}

// evaluateLocked recomputes every DC's health, noting DCs that became
// unhealthy or healthy again, and wakes waiters; h.mu is held. Before the
// first complete load it only records the view.
func (h *health) evaluateLocked() {
	if h.loadedAt.IsZero() {
		return
	}
	now := h.clock.Now()
	dcs := map[string]bool{}
	addKeys(dcs, h.seen)
	addKeys(dcs, h.etcdDown)
	addKeys(dcs, h.records)
	addKeys(dcs, h.proxies)
	addKeys(dcs, h.unhealthy)
	for dc := range dcs {
		was, is := h.unhealthy[dc], h.reasonsLocked(dc)
		switch {
		case len(is) > 0 && (len(was) == 0 && h.seen[dc]):
			h.zeroSince[dc] = now
			delete(h.upSince, dc)
			h.log.Warn("dc is unhealthy", "dc", dc, "why", strings.Join(is, "; "))
		case len(is) == 0 && (len(was) > 0 || !h.seen[dc]):
			h.upSince[dc] = now
			delete(h.zeroSince, dc)
			h.log.Info("dc is healthy", "dc", dc, "brokers", len(h.records[dc]), "proxies", len(h.proxies[dc]))
		}
		if len(is) == 0 {
			h.seen[dc] = true
			delete(h.unhealthy, dc)
		} else {
			h.unhealthy[dc] = is
		}
		h.m.dcAlive.WithLabelValues(dc).Set(float64(len(h.records[dc])))
		h.m.dcProxies.WithLabelValues(dc).Set(float64(len(h.proxies[dc])))
		healthy := 0.0
		if len(is) == 0 {
			healthy = 1
		}
		h.m.dcHealthy.WithLabelValues(dc).Set(healthy)
	}
	close(h.changedCh)
	h.changedCh = make(chan struct{})
}

// addKeys adds the keys of m to set.
func addKeys[V any](set map[string]bool, m map[string]V) {
	for k := range m {
		set[k] = true
	}
}
