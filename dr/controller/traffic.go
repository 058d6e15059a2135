package controller

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
)

// TargetRequest names one DC: the target of a traffic switch, or the DC
// to block or unblock.
type TargetRequest struct {
	DC     string `json:"dc"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// WeightsRequest sets the per-DC weights of unordered writes; a DC left
// out gets none.
type WeightsRequest struct {
	Weights map[string]int `json:"weights"`
	Actor   string         `json:"actor,omitempty"`
	Reason  string         `json:"reason,omitempty"`
}

// TrafficView is the traffic policy and the DCs it applies to.
type TrafficView struct {
	Traffic  meta.Traffic `json:"traffic"`
	Revision int64        `json:"revision"`
	DCs      []meta.DC    `json:"dcs"`
}

// Traffic reads the traffic policy and the DCs.
func (c *Controller) Traffic(ctx context.Context) (TrafficView, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	tr, rev, err := c.store.GetTraffic(ctx)
	if err != nil {
		return TrafficView{}, err
	}
	dcs, _, err := c.store.ListDCs(ctx)
	if err != nil {
		return TrafficView{}, err
	}
	return TrafficView{Traffic: tr, Revision: rev, DCs: dcs}, nil
}

// SwitchTraffic sends all traffic to one DC: every unordered write (weight
// 100 for the DC, 0 for the others, no per-topic overrides) and, by
// planned switchovers, every ordered topic. It waits for the switchovers.
func (c *Controller) SwitchTraffic(ctx context.Context, req TargetRequest) (Report, error) {
	t, err := c.leading()
	if err != nil {
		return Report{}, err
	}
	if err := checkDC("dc", req.DC); err != nil {
		return Report{}, err
	}
	if err := checkMeta(&req.Actor, &req.Reason); err != nil {
		return Report{}, err
	}
	v, err := c.readView(ctx)
	if err != nil {
		return Report{}, err
	}
	if err := v.target(req.DC, false); err != nil {
		return Report{}, err
	}
	cur, rev, err := c.getTraffic(ctx)
	if err != nil {
		return Report{}, err
	}
	if slices.Contains(cur.BlockedDCs, req.DC) {
		return Report{}, errorf(ErrDCBlocked, "dc %s is blocked for writes: unblock it first", req.DC)
	}
	ots, err := c.orderedTopics(ctx, func(ot orderedTopic) bool { return ot.rec.Primary != req.DC || ot.rec.Blocked })
	if err != nil {
		return Report{}, err
	}
	now := c.clock.Now()
	trs := make([]*Transition, 0, len(ots))
	for _, ot := range ots {
		if err := checkMovable(v, ot, req.DC); err != nil {
			return Report{}, err
		}
		trs = append(trs, c.newTransition(KindSwitchover, ot, req.DC, switchoverSteps, req.Actor, req.Reason, now))
	}
	next := meta.Traffic{Weights: map[string]int{}, BlockedDCs: cur.BlockedDCs}
	for name := range v.dcs {
		next.Weights[name] = 0
	}
	next.Weights[req.DC] = 100
	var pre func() error
	if !sameTraffic(cur, next) {
		pre = func() error {
			return c.writeTraffic(ctx, AuditTrafficSwitch, req.DC, req.Actor, req.Reason, cur, rev, next)
		}
	}
	rep, err := c.execute(ctx, t, trs, pre)
	if rep.Transitions != nil || err == nil {
		rep.Traffic = &next
	}
	return rep, err
}

// SetWeights replaces the per-DC weights of unordered writes.
func (c *Controller) SetWeights(ctx context.Context, req WeightsRequest) (Report, error) {
	if _, err := c.leading(); err != nil {
		return Report{}, err
	}
	if err := checkMeta(&req.Actor, &req.Reason); err != nil {
		return Report{}, err
	}
	if len(req.Weights) == 0 {
		return Report{}, errorf(ErrInvalid, `"weights" is empty: give {"dc": weight, ...}`)
	}
	sum := 0
	for dc, w := range req.Weights {
		if err := checkName(names.DC, dc); err != nil {
			return Report{}, err
		}
		if w < 0 || w > meta.MaxWeight {
			return Report{}, errorf(ErrInvalid, "weight %d of dc %s is not in [0, %d]", w, dc, meta.MaxWeight)
		}
		sum += w
	}
	if sum == 0 {
		return Report{}, errorf(ErrInvalid, "every weight is 0: at least one dc must take writes")
	}
	v, err := c.readView(ctx)
	if err != nil {
		return Report{}, err
	}
	for _, dc := range slices.Sorted(maps.Keys(req.Weights)) {
		if _, err := v.dc(dc); err != nil {
			return Report{}, err
		}
	}
	cur, rev, err := c.getTraffic(ctx)
	if err != nil {
		return Report{}, err
	}
	next := cur
	next.Weights = maps.Clone(req.Weights)
	if sameTraffic(cur, next) {
		return Report{Transitions: []Outcome{}, Traffic: &cur}, nil
	}
	if err := c.writeTraffic(ctx, AuditTrafficWeights, "", req.Actor, req.Reason, cur, rev, next); err != nil {
		return Report{}, err
	}
	return Report{Transitions: []Outcome{}, Traffic: &next, Changed: true}, nil
}

// BlockDC stops unordered writes to a DC (they go to the other DCs). It
// refuses to block the last DC that takes writes.
func (c *Controller) BlockDC(ctx context.Context, req TargetRequest) (Report, error) {
	return c.changeBlocked(ctx, req, true)
}

// UnblockDC lets a blocked DC take unordered writes again.
func (c *Controller) UnblockDC(ctx context.Context, req TargetRequest) (Report, error) {
	return c.changeBlocked(ctx, req, false)
}

func (c *Controller) changeBlocked(ctx context.Context, req TargetRequest, block bool) (Report, error) {
	if _, err := c.leading(); err != nil {
		return Report{}, err
	}
	if err := checkDC("dc", req.DC); err != nil {
		return Report{}, err
	}
	if err := checkMeta(&req.Actor, &req.Reason); err != nil {
		return Report{}, err
	}
	v, err := c.readView(ctx)
	if err != nil {
		return Report{}, err
	}
	if _, err := v.dc(req.DC); err != nil {
		return Report{}, err
	}
	cur, rev, err := c.getTraffic(ctx)
	if err != nil {
		return Report{}, err
	}
	next := cur
	next.BlockedDCs = slices.DeleteFunc(slices.Clone(cur.BlockedDCs), func(dc string) bool { return dc == req.DC })
	kind := AuditTrafficUnblock
	if block {
		kind = AuditTrafficBlock
		next.BlockedDCs = append(next.BlockedDCs, req.DC)
		open := 0
		for name := range v.dcs {
			if !slices.Contains(next.BlockedDCs, name) {
				open++
			}
		}
		if open == 0 {
			return Report{}, errorf(ErrLastDC, "blocking %s would leave no dc taking unordered writes", req.DC)
		}
	}
	slices.Sort(next.BlockedDCs)
	if slices.Equal(next.BlockedDCs, cur.BlockedDCs) {
		return Report{Transitions: []Outcome{}, Traffic: &cur}, nil
	}
	if err := c.writeTraffic(ctx, kind, req.DC, req.Actor, req.Reason, cur, rev, next); err != nil {
		return Report{}, err
	}
	return Report{Transitions: []Outcome{}, Traffic: &next, Changed: true}, nil
}

// sameTraffic reports whether two policies route alike.
func sameTraffic(a, b meta.Traffic) bool {
	return maps.Equal(a.Weights, b.Weights) && slices.Equal(a.BlockedDCs, b.BlockedDCs) &&
		maps.EqualFunc(a.TopicOverrides, b.TopicOverrides, func(x, y map[string]int) bool { return maps.Equal(x, y) })
}

func (c *Controller) getTraffic(ctx context.Context) (meta.Traffic, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	return c.store.GetTraffic(ctx)
}

// writeTraffic replaces the traffic policy if it is still at rev, and
// audits the change.
func (c *Controller) writeTraffic(ctx context.Context, kind, dc, actor, reason string, cur meta.Traffic, rev int64, next meta.Traffic) error {
	start := c.clock.Now()
	wctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	_, err := c.store.CASTraffic(wctx, rev, next)
	cancel()
	if errors.Is(err, meta.ErrConflict) {
		return errorf(ErrConflict, "the traffic policy changed concurrently: %v", err)
	}
	if err != nil {
		return err
	}
	c.m.trafficOps.WithLabelValues(kind).Inc()
	c.log.Info("traffic policy changed", "op", kind, "dc", dc, "actor", actor, "weights", next.Weights, "blocked", next.BlockedDCs)
	c.audit(context.WithoutCancel(ctx), AuditRecord{Kind: kind, DC: dc, Reason: reason, Actor: actor,
		Before: rawJSON(cur), After: rawJSON(next), Outcome: OutcomeOK, DurationSeconds: c.clock.Now().Sub(start).Seconds()})
	return nil
}
