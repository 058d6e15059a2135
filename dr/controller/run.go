package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/duomq/duomq/dr/meta"
)

// Outcome is the result of one transition.
type Outcome struct {
	ID    string `json:"id"`
	Kind  Kind   `json:"kind"`
	Topic string `json:"topic"`
	From  string `json:"from"`
	To    string `json:"to"`
	// Outcome is ok, failed, rolled-back or interrupted (the next leader
	// resumes it).
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	// Before and After are the topic's fencing record at the start and at
	// the end.
	Before meta.Ordered `json:"before"`
	After  meta.Ordered `json:"after"`
	// PauseSeconds is the write pause: from the blocking write to the
	// promoting (or rolling back) write; 0 when writes were not blocked.
	PauseSeconds float64 `json:"pause_seconds"`
	// DurationSeconds runs from the start (an automatic failover: the
	// detection) to the last routing write.
	DurationSeconds float64 `json:"duration_seconds"`
	// Err is the error behind Error.
	Err error `json:"-"`
}

// runner carries out one transition.
type runner struct {
	t  *term
	c  *Controller
	tr *Transition
	// last is the topic's record as last read or written.
	last meta.Ordered
	// done is when the last routing write succeeded.
	done time.Time
}

// run carries out a registered transition, bounded by MaxParallel.
func (t *term) run(tr *Transition, resumed bool) Outcome {
	r := &runner{t: t, c: t.c, tr: tr, last: tr.Before}
	select {
	case t.sem <- struct{}{}:
	case <-t.ctx.Done():
		return r.finish(errorf(ErrInterrupted, "leadership ended before the transition ran"))
	}
	defer func() { <-t.sem }()
	t.c.m.inProgress.Inc()
	defer t.c.m.inProgress.Dec()
	if tr.Phase == PhaseRollback {
		return r.finish(errors.New(tr.Error))
	}
	var err error
	if !resumed {
		err = r.hook(PhasePending)
	}
	if err == nil {
		err = r.steps()
	}
	return r.finish(err)
}

// steps runs the transition's phases from the stored one, persisting each
// before carrying it out.
func (r *runner) steps() error {
	start := max(slices.Index(r.tr.Steps, r.t.snapshot(r.tr).Phase), 0)
	for _, p := range r.tr.Steps[start:] {
		if err := r.t.update(r.tr, func(x *Transition) { x.Phase = p }); err != nil {
			return err
		}
		if err := r.do(p); err != nil {
			return err
		}
		if err := r.hook(p); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) do(p Phase) error {
	switch p {
	case PhaseActivate:
		return r.setDCState(r.tr.To, meta.DCActive)
	case PhaseFollow:
		return r.follow()
	case PhaseBlock:
		return r.block()
	case PhaseFence:
		if r.tr.Kind == KindFailover {
			return r.fenceBestEffort()
		}
		return r.fence()
	case PhaseWaitLease:
		return r.waitLease()
	case PhaseCatchUp:
		return r.catchUp()
	case PhasePromote:
		return r.promote()
	case PhaseMarkDown:
		return r.setDCState(r.tr.From, meta.DCDown)
	}
	return fmt.Errorf("controller: transition %s: unknown phase %q", r.tr.ID, p)
}

// hook calls the AfterPhase fault point.
func (r *runner) hook(p Phase) error {
	if r.c.hooks.AfterPhase == nil {
		return nil
	}
	if err := r.c.hooks.AfterPhase(r.t.snapshot(r.tr), p); err != nil {
		return errorf(ErrInterrupted, "fault point after phase %s: %v", p, err)
	}
	return nil
}

// set changes the transition without persisting it (the next phase's
// write carries the change).
func (r *runner) set(fn func(*Transition)) {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	fn(r.tr)
}

func (r *runner) interrupted(err error) bool {
	return errors.Is(err, ErrInterrupted) || errors.Is(err, ErrNotLeader) || r.t.ctx.Err() != nil
}

// finish rolls back what a failed step left blocked, then audits the
// transition and forgets it. An interrupted transition stays registered
// and in controller/state for the next leader.
func (r *runner) finish(err error) Outcome {
	tr := r.t.snapshot(r.tr)
	o := Outcome{ID: tr.ID, Kind: tr.Kind, Topic: tr.Topic, From: tr.From, To: tr.To, Before: tr.Before, Outcome: OutcomeOK}
	if err != nil && !r.interrupted(err) {
		o.Outcome = OutcomeFailed
		if rerr := r.rollback(err); rerr != nil {
			err = fmt.Errorf("%w; rollback: %w", err, rerr)
		} else if r.t.snapshot(r.tr).Phase == PhaseRollback {
			o.Outcome = OutcomeRolledBack
		}
	}
	if err != nil && r.interrupted(err) {
		o.Outcome, o.Err, o.Error = OutcomeInterrupted, wrapInterrupted(err), err.Error()
		r.c.log.Warn("transition interrupted; the next leader resumes it", "id", tr.ID, "kind", tr.Kind, "topic", tr.Topic, "phase", r.t.snapshot(r.tr).Phase, "err", err)
		return o
	}
	end := r.done
	if end.IsZero() {
		end = r.c.clock.Now()
	}
	o.After = r.last
	o.DurationSeconds = end.Sub(tr.Started).Seconds()
	if bt := r.t.snapshot(r.tr).BlockedAt; !bt.IsZero() && !r.done.IsZero() {
		o.PauseSeconds = r.done.Sub(bt).Seconds()
	}
	if err != nil {
		o.Err, o.Error = err, err.Error()
	}
	r.record(o, tr)
	r.t.release(r.tr)
	if perr := r.t.persist(); perr != nil {
		r.c.log.Warn("cannot remove a finished transition from controller/state; the next leader will find it done", "id", tr.ID, "err", perr)
	}
	return o
}

func wrapInterrupted(err error) error {
	if errors.Is(err, ErrInterrupted) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInterrupted, err)
}

// record logs, counts and audits a finished transition.
func (r *runner) record(o Outcome, tr Transition) {
	m := r.c.m
	m.total[tr.Kind].WithLabelValues(o.Outcome).Inc()
	if o.Outcome == OutcomeOK {
		m.duration[tr.Kind].Observe(o.DurationSeconds)
	}
	if o.PauseSeconds > 0 {
		m.lastPause.Set(o.PauseSeconds)
	}
	log := r.c.log.Info
	if o.Outcome != OutcomeOK {
		log = r.c.log.Warn
	}
	log("transition finished", "id", tr.ID, "kind", tr.Kind, "topic", tr.Topic, "from", tr.From, "to", tr.To,
		"outcome", o.Outcome, "epoch", o.After.Epoch, "pause", time.Duration(o.PauseSeconds*float64(time.Second)),
		"duration", time.Duration(o.DurationSeconds*float64(time.Second)), "err", o.Error)
	r.c.audit(context.WithoutCancel(r.t.ctx), AuditRecord{
		ID: tr.ID, Kind: string(tr.Kind), Topic: tr.Topic, From: tr.From, To: tr.To, Reason: tr.Reason, Actor: tr.Actor,
		Before: rawJSON(o.Before), After: rawJSON(o.After), Outcome: o.Outcome, Error: o.Error,
		PauseSeconds: o.PauseSeconds, DurationSeconds: o.DurationSeconds,
	})
}

// rollback unblocks the source when a failed step left the topic blocked
// by this transition: CAS {from, e+1, unblocked}.
func (r *runner) rollback(cause error) error {
	tr := r.t.snapshot(r.tr)
	if tr.BlockEpoch == 0 || !tr.has(PhaseBlock) {
		return nil
	}
	rec, err := r.read()
	if err != nil {
		return err
	}
	if !tr.isBlocked(rec) && !tr.isRolledBack(rec) {
		return nil
	}
	if err := r.t.update(r.tr, func(x *Transition) { x.Phase, x.Error = PhaseRollback, cause.Error() }); err != nil {
		return err
	}
	_, err = r.advance(tr.isRolledBack, tr.isBlocked, func(o meta.Ordered) meta.Ordered {
		return meta.Ordered{Topic: tr.Topic, Primary: tr.From, Epoch: o.Epoch + 1}
	})
	return err
}

// Record predicates of a transition.

func (t Transition) isStart(o meta.Ordered) bool {
	return o.Primary == t.Before.Primary && o.Epoch == t.Before.Epoch && o.Blocked == t.Before.Blocked
}

func (t Transition) isBlocked(o meta.Ordered) bool {
	return t.BlockEpoch > 0 && o.Primary == t.From && o.Blocked && o.Epoch == t.BlockEpoch
}

func (t Transition) isPromoted(o meta.Ordered) bool {
	return o.Primary == t.To && !o.Blocked && o.Epoch > t.Before.Epoch && o.Epoch > t.BlockEpoch
}

func (t Transition) isRolledBack(o meta.Ordered) bool {
	return t.BlockEpoch > 0 && o.Primary == t.From && !o.Blocked && o.Epoch > t.BlockEpoch
}

// read returns the topic's record, retrying while etcd is unavailable.
func (r *runner) read() (meta.Ordered, error) {
	var rec meta.Ordered
	err := r.t.retry(func(ctx context.Context) error {
		var err error
		rec, _, err = r.c.store.GetOrdered(ctx, r.tr.Topic)
		return err
	})
	if err == nil {
		r.last = rec
	}
	return rec, err
}

// advance moves the topic's record to the state done describes, from the
// state from describes, writing next(record) with a compare-revision
// write. A record already done is left alone (a resumed step); a record
// in neither state changed under the transition (ErrConflict). A lost
// race or an unavailable etcd re-reads and decides again.
func (r *runner) advance(done, from func(meta.Ordered) bool, next func(meta.Ordered) meta.Ordered) (meta.Ordered, error) {
	for {
		var rec meta.Ordered
		var rev int64
		err := r.t.retry(func(ctx context.Context) error {
			var err error
			rec, rev, err = r.c.store.GetOrdered(ctx, r.tr.Topic)
			return err
		})
		if err != nil {
			return rec, err
		}
		r.last = rec
		if done(rec) {
			if r.done.IsZero() {
				r.done = r.c.clock.Now() // done by an earlier leader
			}
			return rec, nil
		}
		if !from(rec) {
			return rec, errorf(ErrConflict, "topic %s changed under the %s: primary %s, epoch %d, blocked %v",
				r.tr.Topic, r.tr.Kind, rec.Primary, rec.Epoch, rec.Blocked)
		}
		want := next(rec)
		err = r.t.retry(func(ctx context.Context) error {
			_, err := r.c.store.CASOrdered(ctx, r.tr.Topic, rev, want)
			return err
		})
		switch {
		case err == nil:
			r.last, r.done = want, r.c.clock.Now()
			return want, nil
		case errors.Is(err, meta.ErrConflict):
			continue
		}
		return rec, err
	}
}
