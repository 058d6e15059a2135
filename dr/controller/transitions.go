package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/duomq/duomq/dr/meta"
)

// Steps of each kind of transition.
var (
	switchoverSteps   = []Phase{PhaseBlock, PhaseFence, PhaseCatchUp, PhasePromote}
	failbackSteps     = []Phase{PhaseActivate, PhaseFollow, PhaseBlock, PhaseFence, PhaseCatchUp, PhasePromote}
	failoverSteps     = []Phase{PhasePromote}
	failoverLiveSteps = []Phase{PhaseBlock, PhaseFence, PhaseWaitLease, PhasePromote}
)

// Switchover moves the primary of one topic, or of every ordered topic of
// a DC, to req.To with zero loss, and waits for the outcome: block writes,
// fence the source, wait until the target's followers have every fenced
// offset, promote. A failed fence or catch-up rolls back.
func (c *Controller) Switchover(ctx context.Context, req SwitchoverRequest) (Report, error) {
	t, err := c.leading()
	if err != nil {
		return Report{}, err
	}
	trs, err := c.planSwitchover(ctx, req)
	if err != nil {
		return Report{}, err
	}
	return c.execute(ctx, t, trs, nil)
}

func (c *Controller) planSwitchover(ctx context.Context, req SwitchoverRequest) ([]*Transition, error) {
	if err := oneOf(req.Topic, req.DC); err != nil {
		return nil, err
	}
	if err := checkDC("to", req.To); err != nil {
		return nil, err
	}
	if err := checkMeta(&req.Actor, &req.Reason); err != nil {
		return nil, err
	}
	v, err := c.readView(ctx)
	if err != nil {
		return nil, err
	}
	if err := v.target(req.To, false); err != nil {
		return nil, err
	}
	ots, err := c.selectTopics(ctx, v, req.Topic, req.DC, func(ot orderedTopic) bool { return ot.rec.Primary == req.DC })
	if err != nil {
		return nil, err
	}
	now := c.clock.Now()
	trs := make([]*Transition, 0, len(ots))
	for _, ot := range ots {
		if err := checkMovable(v, ot, req.To); err != nil {
			return nil, err
		}
		trs = append(trs, c.newTransition(KindSwitchover, ot, req.To, switchoverSteps, req.Actor, req.Reason, now))
	}
	return trs, nil
}

// selectTopics returns the named topic, or the ordered topics keep
// selects when a DC is named (which must exist).
func (c *Controller) selectTopics(ctx context.Context, v view, topic, dc string, keep func(orderedTopic) bool) ([]orderedTopic, error) {
	if topic != "" {
		ot, err := c.getOrdered(ctx, topic)
		if err != nil {
			return nil, err
		}
		return []orderedTopic{ot}, nil
	}
	if _, err := v.dc(dc); err != nil {
		return nil, err
	}
	return c.orderedTopics(ctx, keep)
}

// checkMovable checks that a planned move of ot to dc can start: dc is
// not the primary already, the record is not blocked, and the primary has
// brokers to fence.
func checkMovable(v view, ot orderedTopic, to string) error {
	switch {
	case ot.rec.Primary == to && !ot.rec.Blocked:
		return errorf(ErrAlreadyPrimary, "topic %s: %s is already its primary (epoch %d)", ot.topic.Name, to, ot.rec.Epoch)
	case ot.rec.Blocked:
		return errorf(ErrBusy, "topic %s is blocked for writes at epoch %d by an unfinished transition", ot.topic.Name, ot.rec.Epoch)
	case len(v.alive[ot.rec.Primary]) == 0:
		return errorf(ErrPrimaryDown, "topic %s: its primary %s has no alive brokers to fence: use a failover", ot.topic.Name, ot.rec.Primary)
	}
	return nil
}

// Failover moves the primary of one topic, or of every ordered topic of a
// DC (then marked down), away from a DC that is down, and waits for the
// outcome. A primary whose brokers are all gone cannot accept writes (its
// leases ended), so the new primary is written at once; with Force, a
// primary that still has alive brokers is first blocked and fenced, and
// its lease waited out.
func (c *Controller) Failover(ctx context.Context, req FailoverRequest) (Report, error) {
	t, err := c.leading()
	if err != nil {
		return Report{}, err
	}
	trs, err := c.planFailover(ctx, t, req, false, c.clock.Now())
	if err != nil {
		return Report{}, err
	}
	if len(trs) == 0 && req.DC != "" {
		return c.setDCDirect(ctx, t, req.DC, meta.DCDown, AuditDCDown, req.Actor, req.Reason)
	}
	return c.execute(ctx, t, trs, nil)
}

// planFailover builds the failover of req. Automatic failovers (auto)
// leave out busy topics instead of refusing.
func (c *Controller) planFailover(ctx context.Context, t *term, req FailoverRequest, auto bool, started time.Time) ([]*Transition, error) {
	if err := oneOf(req.Topic, req.DC); err != nil {
		return nil, err
	}
	if req.To != "" {
		if err := checkDC("to", req.To); err != nil {
			return nil, err
		}
	}
	if err := checkMeta(&req.Actor, &req.Reason); err != nil {
		return nil, err
	}
	v, err := c.readView(ctx)
	if err != nil {
		return nil, err
	}
	ots, err := c.selectTopics(ctx, v, req.Topic, req.DC, func(ot orderedTopic) bool {
		return ot.rec.Primary == req.DC && !(auto && t.busy(ot.topic.Name))
	})
	if err != nil {
		return nil, err
	}
	from := req.DC
	if req.Topic != "" {
		from = ots[0].rec.Primary
	}
	steps := failoverSteps
	if n := len(v.alive[from]); n > 0 {
		if !req.Force {
			return nil, errorf(ErrPrimaryAlive, "primary %s has %d alive brokers: use a switchover, or force the failover", from, n)
		}
		steps = failoverLiveSteps
	}
	if req.DC != "" {
		steps = append(steps[:len(steps):len(steps)], PhaseMarkDown)
	}
	if req.To != "" {
		if req.To == from {
			return nil, errorf(ErrAlreadyPrimary, "%s is the dc failing over", from)
		}
		if err := v.target(req.To, true); err != nil {
			return nil, err
		}
	} else if _, err := v.pick(from, ""); err != nil {
		return nil, err
	}
	trs := make([]*Transition, 0, len(ots))
	for _, ot := range ots {
		to := req.To
		if to == "" {
			to, _ = v.pick(from, ot.topic.Primary)
		}
		if ot.rec.Primary == to && !ot.rec.Blocked {
			return nil, errorf(ErrAlreadyPrimary, "topic %s: %s is already its primary", ot.topic.Name, to)
		}
		trs = append(trs, c.newTransition(KindFailover, ot, to, steps, req.Actor, req.Reason, started))
	}
	return trs, nil
}

// Failback returns one topic, or every ordered topic whose home is a DC,
// to its home DC once that DC has alive brokers, and waits for the
// outcome: set the home DC active, wait until its followers caught up with
// the current primary, then switch over.
func (c *Controller) Failback(ctx context.Context, req FailbackRequest) (Report, error) {
	t, err := c.leading()
	if err != nil {
		return Report{}, err
	}
	trs, err := c.planFailback(ctx, t, req, false)
	if err != nil {
		return Report{}, err
	}
	if len(trs) == 0 && req.DC != "" {
		return c.setDCDirect(ctx, t, req.DC, meta.DCActive, AuditDCActive, req.Actor, req.Reason)
	}
	return c.execute(ctx, t, trs, nil)
}

func (c *Controller) planFailback(ctx context.Context, t *term, req FailbackRequest, auto bool) ([]*Transition, error) {
	if err := oneOf(req.Topic, req.DC); err != nil {
		return nil, err
	}
	if err := checkMeta(&req.Actor, &req.Reason); err != nil {
		return nil, err
	}
	v, err := c.readView(ctx)
	if err != nil {
		return nil, err
	}
	ots, err := c.selectTopics(ctx, v, req.Topic, req.DC, func(ot orderedTopic) bool {
		return ot.topic.Primary == req.DC && ot.rec.Primary != req.DC && !(auto && t.busy(ot.topic.Name))
	})
	if err != nil {
		return nil, err
	}
	home := req.DC
	if req.Topic != "" {
		home = ots[0].topic.Primary
		if _, err := v.dc(home); err != nil {
			return nil, fmt.Errorf("home of topic %s: %w", req.Topic, err)
		}
	}
	if len(v.alive[home]) == 0 {
		return nil, errorf(ErrNoAliveBrokers, "dc %s has no alive brokers: it has not returned", home)
	}
	now := c.clock.Now()
	trs := make([]*Transition, 0, len(ots))
	for _, ot := range ots {
		err := checkMovable(v, ot, home)
		if auto && err != nil {
			c.log.Info("leaving a topic out of the automatic failback", "topic", ot.topic.Name, "reason", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		trs = append(trs, c.newTransition(KindFailback, ot, home, failbackSteps, req.Actor, req.Reason, now))
	}
	return trs, nil
}

// setDCDirect sets a DC's state for a failover or failback of a DC that
// leads no ordered topic, and audits it.
func (c *Controller) setDCDirect(ctx context.Context, t *term, dc string, state meta.DCState, kind, actor, reason string) (Report, error) {
	if err := checkMeta(&actor, &reason); err != nil {
		return Report{}, err
	}
	start := c.clock.Now()
	var before meta.DC
	changed := false
	err := t.retry(func(ctx context.Context) error {
		cur, _, err := c.store.GetDC(ctx, dc)
		if err != nil || cur.State == state {
			before = cur
			return err
		}
		before = cur
		_, err = c.store.SetDCState(ctx, dc, state, truncate(actor+" via controller "+c.cfg.ID, 256))
		changed = err == nil
		return err
	})
	if err != nil {
		return Report{}, err
	}
	rep := Report{Transitions: []Outcome{}, DC: dc, DCState: state, Changed: changed}
	if changed {
		c.log.Info("dc state set", "dc", dc, "state", state, "actor", actor)
		c.audit(ctx, AuditRecord{Kind: kind, DC: dc, Reason: reason, Actor: actor, Before: rawJSON(before.State),
			After: rawJSON(state), Outcome: OutcomeOK, DurationSeconds: c.clock.Now().Sub(start).Seconds()})
	}
	return rep, nil
}
