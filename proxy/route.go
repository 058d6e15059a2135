package proxy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/nameserver"
)

// brokersOf returns the brokers hosting topic in dc that serve clients,
// sorted by name: a standby of a replica set serves none (it copies its
// leader; meta.Slot.Standbys), so it is left out.
func (p *Proxy) brokersOf(ctx context.Context, topic, dc string) ([]brokerRef, error) {
	all, err := p.routeBrokers(ctx, topic, dc)
	if err != nil || len(all) == 0 {
		return all, err
	}
	standby := map[string]bool{}
	for _, s := range p.meta.Placement(dc) {
		for _, sb := range s.Standbys {
			standby[sb.Name] = true
		}
	}
	return slices.DeleteFunc(all, func(b brokerRef) bool { return standby[b.Name] }), nil
}

// routeBrokers returns every broker the route of topic lists in dc,
// sorted by name.
func (p *Proxy) routeBrokers(ctx context.Context, topic, dc string) ([]brokerRef, error) {
	rc := p.routes[dc]
	if rc == nil {
		return nil, errorf(ErrUnavailable, "no nameserver configured for dc %s (proxy config nameservers)", dc)
	}
	route, _, err := rc.Route(ctx, topic, dc)
	if errors.Is(err, nameserver.ErrNoRoute) {
		return nil, nil
	}
	if err != nil {
		return nil, errorf(ErrUnavailable, "route of topic %q in %s: %v", topic, dc, err)
	}
	out := make([]brokerRef, 0, len(route.GetBrokers()))
	for _, b := range route.GetBrokers() {
		if b.GetDc() != dc {
			continue
		}
		out = append(out, brokerRef{DC: dc, Name: b.GetBroker(), Addr: b.GetAddress(), Queues: b.GetQueues(), Perm: b.GetPerm()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// brokerByName finds a broker by name in dc through the route of topic,
// a standby too (a receipt names the broker that handed the message out,
// which may have been demoted since).
func (p *Proxy) brokerByName(ctx context.Context, topic, dc, name string) (brokerRef, bool) {
	bs, err := p.routeBrokers(ctx, topic, dc)
	if err != nil {
		return brokerRef{}, false
	}
	i := slices.IndexFunc(bs, func(b brokerRef) bool { return b.Name == name })
	if i < 0 {
		return brokerRef{}, false
	}
	return bs[i], true
}

// picker keeps the round-robin counters of the proxy.
type picker struct {
	mu       sync.Mutex
	counters map[string]*atomic.Uint64
}

func newPicker() *picker { return &picker{counters: map[string]*atomic.Uint64{}} }

// next returns the next value of the named counter.
func (pk *picker) next(name string) uint64 {
	pk.mu.Lock()
	c, ok := pk.counters[name]
	if !ok {
		c = new(atomic.Uint64)
		pk.counters[name] = c
	}
	pk.mu.Unlock()
	return c.Add(1) - 1
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// dcChoice is a DC to write to and why, when it is not the proxy's own.
type dcChoice struct {
	dc     string
	reason string
}

// writeBlocked says why dc takes no unordered writes ("" when it does).
func writeBlocked(dc string, t meta.Traffic, d meta.DC, known bool) string {
	if slices.Contains(t.BlockedDCs, dc) {
		return fmt.Sprintf("%s is blocked for writes by the traffic policy (traffic.blocked_dcs)", dc)
	}
	if known && d.State != meta.DCActive && d.State != "" {
		return fmt.Sprintf("%s is %s", dc, d.State)
	}
	return ""
}

// writeDCs orders the DCs an unordered write of topic may go to: first
// the one the traffic policy picks (normally the proxy's own), then the
// others as fallbacks. blocked holds why each excluded DC was left out.
func (p *Proxy) writeDCs(topic string) (order []dcChoice, blocked []string) {
	traffic, _ := p.meta.Traffic()
	var open []string
	for _, dc := range p.routableDCs() {
		d, known := p.meta.DC(dc)
		if why := writeBlocked(dc, traffic, d, known); why != "" {
			blocked = append(blocked, why)
			continue
		}
		open = append(open, dc)
	}
	if len(open) == 0 {
		return nil, blocked
	}
	first := p.weightedDC(topic, traffic, open)
	reason := ""
	if first != p.cfg.DC {
		if slices.Contains(open, p.cfg.DC) {
			reason = fmt.Sprintf("the traffic policy's weights send part of topic %s's writes to %s", topic, first)
		} else {
			reason = strings.Join(blocked, "; ")
		}
	}
	order = append(order, dcChoice{first, reason})
	for _, dc := range open {
		if dc != first {
			order = append(order, dcChoice{dc: dc})
		}
	}
	return order, blocked
}

// routableDCs are the DCs with a route client, the proxy's own first.
func (p *Proxy) routableDCs() []string {
	out := []string{p.cfg.DC}
	var others []string
	for dc := range p.routes {
		if dc != p.cfg.DC {
			others = append(others, dc)
		}
	}
	sort.Strings(others)
	return append(out, others...)
}

// weightedDC picks the first DC of a write among open ones: the proxy's
// own unless traffic weights (the topic's override, else the global ones)
// give other DCs a share, then round robin by weight.
func (p *Proxy) weightedDC(topic string, t meta.Traffic, open []string) string {
	weights := t.Weights
	if o, ok := t.TopicOverrides[topic]; ok {
		weights = o
	}
	total := 0
	for _, dc := range open {
		total += max(weights[dc], 0)
	}
	if len(weights) == 0 || total == 0 {
		if slices.Contains(open, p.cfg.DC) {
			return p.cfg.DC
		}
		return open[0]
	}
	if weights[p.cfg.DC] == total {
		return p.cfg.DC
	}
	slot := int(p.picker.next("dc/"+topic) % uint64(total))
	for _, dc := range open {
		if slot < max(weights[dc], 0) {
			return dc
		}
		slot -= max(weights[dc], 0)
	}
	return open[0]
}
