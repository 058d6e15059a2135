package controller

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
)

// health follows the brokers' liveness records (alive/<dc>/<broker>, each
// under its broker's lease) through a watch, and remembers since when each
// DC has had none and since when it has had some again. Every candidate
// runs it, so a new leader knows how long a DC has been gone.
type health struct {
	store *meta.Store
	clock Clock
	log   *slog.Logger
	m     *metrics

	mu        sync.Mutex
	loadedAt  time.Time
	records   map[string]map[string]meta.Alive // dc -> broker -> record
	zeroSince map[string]time.Time
	upSince   map[string]time.Time
	seen      map[string]bool // DCs that had records since the first load
	changedCh chan struct{}   // closed and replaced on every change
	readyCh   chan struct{}   // closed at the first load
}

func newHealth(store *meta.Store, clock Clock, log *slog.Logger, m *metrics) *health {
	return &health{
		store: store, clock: clock, log: log, m: m,
		records: map[string]map[string]meta.Alive{}, zeroSince: map[string]time.Time{}, upSince: map[string]time.Time{},
		seen: map[string]bool{}, changedCh: make(chan struct{}), readyCh: make(chan struct{}),
	}
}

// DCHealth is what the controller knows of one DC's brokers.
type DCHealth struct {
	// Alive are the DC's liveness records, sorted by broker name.
	Alive []meta.Alive `json:"alive"`
	// DownSince is when the DC's last record disappeared (or when this
	// controller started watching, if it never saw one); zero while it
	// has records.
	DownSince time.Time `json:"down_since,omitzero"`
	// UpSince is when the DC's first record appeared after it had none.
	UpSince time.Time `json:"up_since,omitzero"`
	// NeverSeen: this candidate has not seen a record of the DC since it
	// started.
	NeverSeen bool `json:"never_seen,omitempty"`
}

// isDown reports whether a DC counts as down: no alive broker for
// down-after, or, for a DC never seen alive by this candidate, for
// startup-grace (so that brokers starting after the controller are not
// failed over).
func (c *Controller) isDown(h DCHealth, now time.Time) bool {
	after := c.cfg.DownAfter
	if h.NeverSeen {
		after = max(after, c.cfg.StartupGrace)
	}
	return len(h.Alive) == 0 && !h.DownSince.IsZero() && now.Sub(h.DownSince) >= after
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
	out := DCHealth{UpSince: h.upSince[dc], NeverSeen: !h.seen[dc]}
	for _, a := range h.records[dc] {
		out.Alive = append(out.Alive, a)
	}
	sort.Slice(out.Alive, func(i, j int) bool { return out.Alive[i].Name < out.Alive[j].Name })
	if len(out.Alive) == 0 {
		out.DownSince = h.zeroSince[dc]
		if out.DownSince.IsZero() {
			out.DownSince = h.loadedAt
		}
		out.UpSince = time.Time{}
	}
	return out
}

// run lists the records, then watches them, listing again whenever the
// watch breaks (no leader, compaction), until ctx ends.
func (h *health) run(ctx context.Context) error {
	prefix := h.store.Key(meta.KeyAlive)
	for ctx.Err() == nil {
		rev, err := h.load(ctx)
		if err != nil {
			h.log.Warn("cannot list broker liveness records; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-h.clock.After(200 * time.Millisecond):
			}
			continue
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range h.store.Client().Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if resp.Err() != nil {
				h.log.Debug("liveness watch broke; listing again", "err", resp.Err())
				break
			}
			h.apply(prefix, resp.Events)
		}
		cancel()
	}
	return nil
}

// load lists every record and replaces the view with it.
func (h *health) load(ctx context.Context) (int64, error) {
	all, rev, err := h.store.ListAlive(ctx)
	if err != nil {
		return 0, err
	}
	next := map[string]map[string]meta.Alive{}
	for dc, as := range all {
		next[dc] = map[string]meta.Alive{}
		for _, a := range as {
			next[dc][a.Name] = a
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.loadedAt.IsZero()
	if first {
		h.loadedAt = h.clock.Now()
	}
	h.replaceLocked(next)
	if first {
		close(h.readyCh)
	}
	return rev, nil
}

// apply applies watch events to the view.
func (h *health) apply(prefix string, evs []*clientv3.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := map[string]map[string]meta.Alive{}
	for dc, m := range h.records {
		next[dc] = maps.Clone(m)
	}
	for _, ev := range evs {
		dc, name, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), prefix), "/")
		if !ok {
			continue
		}
		if ev.Type == mvccpb.DELETE {
			delete(next[dc], name)
			continue
		}
		var a meta.Alive
		if err := json.Unmarshal(ev.Kv.Value, &a); err != nil {
			h.log.Warn("skipping undecodable liveness record", "key", string(ev.Kv.Key), "err", err)
			continue
		}
		if next[dc] == nil {
			next[dc] = map[string]meta.Alive{}
		}
		next[dc][name] = a
	}
	h.replaceLocked(next)
}

// replaceLocked installs a new view, noting DCs that lost their last or
// got their first record, and wakes waiters.
func (h *health) replaceLocked(next map[string]map[string]meta.Alive) {
	now := h.clock.Now()
	dcs := slices.Collect(maps.Keys(next))
	for dc := range h.records {
		dcs = append(dcs, dc)
	}
	for _, dc := range dcs {
		was, is := len(h.records[dc]), len(next[dc])
		switch {
		case was > 0 && is == 0:
			h.zeroSince[dc] = now
			delete(h.upSince, dc)
			h.log.Warn("dc has no alive brokers", "dc", dc)
		case was == 0 && is > 0:
			h.upSince[dc] = now
			delete(h.zeroSince, dc)
			h.log.Info("dc has alive brokers", "dc", dc, "brokers", is)
		}
		if is > 0 {
			h.seen[dc] = true
		}
		h.m.dcAlive.WithLabelValues(dc).Set(float64(is))
	}
	h.records = next
	close(h.changedCh)
	h.changedCh = make(chan struct{})
}
