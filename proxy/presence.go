package proxy

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdPresence publishes the consumer groups live at this proxy as etcd
// keys <prefix><group>/<dc>/<proxy-id>, all bound to one lease of the
// consumer TTL that the proxy keeps alive, and reads every proxy's keys to
// tell which DCs have live consumers of a group. A proxy that dies takes
// its keys with it when the lease ends; a group without consumers here is
// deleted at once. Under the same lease it keeps the proxy's liveness
// record (meta.KeyProxies), by which the controller counts a DC's live
// proxies.
type EtcdPresence struct {
	cli      *clientv3.Client
	prefix   string
	aliveKey string // the proxy's own liveness key, under the same lease
	dc, id   string
	ttl      time.Duration
	log      *slog.Logger
	kick     chan struct{}

	mu     sync.Mutex
	want   map[string]bool
	live   map[string]map[string]bool // group -> dc -> has live consumers
	loaded bool
}

// presenceValue is a key's JSON value, for operators reading etcd.
type presenceValue struct {
	Version int    `json:"version"`
	Proxy   string `json:"proxy"`
	DC      string `json:"dc"`
}

// NewEtcdPresence returns the presence of proxy id in dc under prefix
// (meta.Store.Key(meta.KeyConsumers)), with its liveness record under
// proxies (meta.Store.Key(meta.KeyProxies)); Run keeps it.
func NewEtcdPresence(cli *clientv3.Client, prefix, proxies, dc, id string, ttl time.Duration, logger *slog.Logger) *EtcdPresence {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &EtcdPresence{cli: cli, prefix: prefix, aliveKey: proxies + dc + "/" + id, dc: dc, id: id, ttl: ttl, log: logger,
		kick: make(chan struct{}, 1), want: map[string]bool{}, live: map[string]map[string]bool{}}
}

// SetLocal implements Presence.
func (e *EtcdPresence) SetLocal(groups []string) {
	want := make(map[string]bool, len(groups))
	for _, g := range groups {
		want[g] = true
	}
	e.mu.Lock()
	changed := !maps.Equal(want, e.want)
	e.want = want
	e.mu.Unlock()
	if changed {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// Live implements Presence: true until the first read of etcd succeeded.
func (e *EtcdPresence) Live(group, dc string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.loaded || e.live[group][dc]
}

func (e *EtcdPresence) key(group string) string { return e.prefix + group + "/" + e.dc + "/" + e.id }

// Run keeps the keys and the view of other proxies' keys current until
// ctx ends, then revokes the lease so this proxy's keys vanish at once.
func (e *EtcdPresence) Run(ctx context.Context) error {
	s := &presenceSession{have: map[string]bool{}}
	defer s.end(e)
	t := time.NewTicker(e.ttl / 4)
	defer t.Stop()
	for {
		if err := e.sync(ctx, s); err != nil && ctx.Err() == nil {
			e.log.Warn("consumer presence not synced with etcd", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.kick:
		}
	}
}

// presenceSession is the current lease and the keys put under it.
type presenceSession struct {
	lease  clientv3.LeaseID
	lost   *atomic.Bool // set when the lease's keep-alive ends
	cancel context.CancelFunc
	have   map[string]bool
	alive  bool // the liveness record is under the lease
}

func (s *presenceSession) end(e *EtcdPresence) {
	if s.cancel != nil {
		s.cancel()
	}
	if s.lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		e.cli.Revoke(ctx, s.lease)
	}
}

// sync grants a lease if there is none (or it was lost), puts and deletes
// keys to match the wanted groups, and re-reads every proxy's keys.
func (e *EtcdPresence) sync(ctx context.Context, s *presenceSession) error {
	ctx, cancel := context.WithTimeout(ctx, e.ttl/2)
	defer cancel()
	if s.lease == 0 || s.lost.Load() {
		if err := e.grant(ctx, s); err != nil {
			return err
		}
	}
	e.mu.Lock()
	want := maps.Clone(e.want)
	e.mu.Unlock()
	val, _ := json.Marshal(presenceValue{Version: 1, Proxy: e.id, DC: e.dc})
	if !s.alive {
		if _, err := e.cli.Put(ctx, e.aliveKey, string(val), clientv3.WithLease(s.lease)); err != nil {
			return err
		}
		s.alive = true
	}
	for g := range want {
		if !s.have[g] {
			if _, err := e.cli.Put(ctx, e.key(g), string(val), clientv3.WithLease(s.lease)); err != nil {
				return err
			}
			s.have[g] = true
		}
	}
	for g := range s.have {
		if !want[g] {
			if _, err := e.cli.Delete(ctx, e.key(g)); err != nil {
				return err
			}
			delete(s.have, g)
		}
	}
	return e.read(ctx)
}

func (e *EtcdPresence) grant(ctx context.Context, s *presenceSession) error {
	if s.cancel != nil {
		s.cancel()
	}
	g, err := e.cli.Grant(ctx, max(int64(e.ttl/time.Second), 2))
	if err != nil {
		return err
	}
	kctx, kcancel := context.WithCancel(context.Background())
	ch, err := e.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		kcancel()
		return err
	}
	lost := new(atomic.Bool)
	s.lease, s.lost, s.cancel, s.have, s.alive = g.ID, lost, kcancel, map[string]bool{}, false
	go func() {
		for range ch {
		}
		lost.Store(true)
	}()
	return nil
}

// read rebuilds the view of which DCs have live consumers of each group.
func (e *EtcdPresence) read(ctx context.Context) error {
	resp, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	live := map[string]map[string]bool{}
	for _, kv := range resp.Kvs {
		parts := strings.Split(strings.TrimPrefix(string(kv.Key), e.prefix), "/")
		if len(parts) != 3 {
			continue
		}
		if live[parts[0]] == nil {
			live[parts[0]] = map[string]bool{}
		}
		live[parts[0]][parts[1]] = true
	}
	e.mu.Lock()
	e.live, e.loaded = live, true
	e.mu.Unlock()
	return nil
}
