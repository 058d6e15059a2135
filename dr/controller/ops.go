package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
)

// SwitchoverRequest asks for a planned switchover to To of one topic, or
// of every ordered topic whose primary is DC.
type SwitchoverRequest struct {
	Topic  string `json:"topic,omitempty"`
	DC     string `json:"dc,omitempty"`
	To     string `json:"to"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// FailoverRequest asks for an unplanned failover of one topic, or of every
// ordered topic whose primary is DC (which is then marked down). To is
// picked when empty. Force fails over a primary that still has alive
// brokers (blocked, fenced, its lease waited out first).
type FailoverRequest struct {
	Topic  string `json:"topic,omitempty"`
	DC     string `json:"dc,omitempty"`
	To     string `json:"to,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// FailbackRequest asks to return one topic, or every ordered topic whose
// home is DC, to its home DC.
type FailbackRequest struct {
	Topic  string `json:"topic,omitempty"`
	DC     string `json:"dc,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Report is the result of a write: the transitions it ran, and what else
// it changed.
type Report struct {
	Transitions []Outcome `json:"transitions"`
	// Traffic is the traffic policy after a traffic change.
	Traffic *meta.Traffic `json:"traffic,omitempty"`
	// DC and DCState report a DC whose state the request set.
	DC      string       `json:"dc,omitempty"`
	DCState meta.DCState `json:"dc_state,omitempty"`
	// Changed is false when the request found nothing to change.
	Changed bool `json:"changed"`
}

// Field limits of requests.
const (
	maxActorLen  = 200
	maxReasonLen = 1000
	defaultActor = "api"
)

// checkMeta validates the actor and reason fields, defaulting the actor.
func checkMeta(actor, reason *string) error {
	if *actor == "" {
		*actor = defaultActor
	}
	if len(*actor) > maxActorLen {
		return errorf(ErrInvalid, "actor is longer than %d characters", maxActorLen)
	}
	if len(*reason) > maxReasonLen {
		return errorf(ErrInvalid, "reason is longer than %d characters", maxReasonLen)
	}
	return nil
}

// oneOf checks that exactly one of topic and dc is given, and the names.
func oneOf(topic, dc string) error {
	switch {
	case topic == "" && dc == "":
		return errorf(ErrInvalid, `give "topic" or "dc"`)
	case topic != "" && dc != "":
		return errorf(ErrInvalid, `give "topic" or "dc", not both`)
	case topic != "":
		return checkName(names.Topic, topic)
	}
	return checkName(names.DC, dc)
}

// checkDC validates a required DC name field.
func checkDC(field, name string) error {
	if name == "" {
		return errorf(ErrInvalid, "%q is required", field)
	}
	if err := checkName(names.DC, name); err != nil {
		return fmt.Errorf("%q: %w", field, err)
	}
	return nil
}

func checkName(check func(string) error, name string) error {
	if err := check(name); err != nil {
		return errorf(ErrInvalid, "%w", err)
	}
	return nil
}

// view is the DCs and their alive brokers, read fresh for a decision.
type view struct {
	dcs   map[string]meta.DC
	alive map[string][]meta.Alive
}

func (c *Controller) readView(ctx context.Context) (view, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	dcs, _, err := c.store.ListDCs(ctx)
	if err != nil {
		return view{}, err
	}
	alive, _, err := c.store.ListAlive(ctx)
	if err != nil {
		return view{}, err
	}
	v := view{dcs: map[string]meta.DC{}, alive: alive}
	for _, d := range dcs {
		v.dcs[d.Name] = d
	}
	return v, nil
}

func (v view) dc(name string) (meta.DC, error) {
	d, ok := v.dcs[name]
	if !ok {
		return d, errorf(ErrUnknownDC, "dc %q does not exist (known: %s)", name, strings.Join(v.names(), ", "))
	}
	return d, nil
}

func (v view) names() []string {
	out := make([]string, 0, len(v.dcs))
	for n := range v.dcs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// target checks that writes may move to dc: it exists, is not down (nor
// draining unless allowed) and has alive brokers.
func (v view) target(name string, allowDraining bool) error {
	d, err := v.dc(name)
	if err != nil {
		return err
	}
	switch {
	case d.State == meta.DCDown:
		return errorf(ErrDCDown, "dc %s is down (set by %s): fail it back first", name, d.UpdatedBy)
	case d.State == meta.DCDraining && !allowDraining:
		return errorf(ErrDCDraining, "dc %s is draining: set it active first", name)
	case len(v.alive[name]) == 0:
		return errorf(ErrNoAliveBrokers, "dc %s has no alive brokers", name)
	}
	return nil
}

// pick chooses the DC that takes over from dc: not dc, not down, with
// alive brokers; the topic's home first, then the most alive brokers.
func (v view) pick(from, home string) (string, error) {
	var best string
	for _, n := range v.names() {
		if n == from || v.target(n, true) != nil {
			continue
		}
		if n == home {
			return n, nil
		}
		if best == "" || len(v.alive[n]) > len(v.alive[best]) {
			best = n
		}
	}
	if best == "" {
		return "", errorf(ErrNoTarget, "no dc other than %s is up with alive brokers", from)
	}
	return best, nil
}

// orderedTopic is an ordered topic and its fencing record.
type orderedTopic struct {
	topic meta.Topic
	rec   meta.Ordered
}

func (c *Controller) getOrdered(ctx context.Context, name string) (orderedTopic, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	t, _, err := c.store.GetTopic(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		return orderedTopic{}, errorf(ErrUnknownTopic, "topic %q does not exist", name)
	}
	if err != nil {
		return orderedTopic{}, err
	}
	if !t.Ordered {
		return orderedTopic{}, errorf(ErrNotOrdered, "topic %s is not ordered: it has no primary; move its writes with traffic weights", name)
	}
	rec, _, err := c.store.GetOrdered(ctx, name)
	if err != nil {
		return orderedTopic{}, err
	}
	return orderedTopic{topic: t, rec: rec}, nil
}

// orderedTopics lists every ordered topic with its record; keep filters.
func (c *Controller) orderedTopics(ctx context.Context, keep func(orderedTopic) bool) ([]orderedTopic, error) {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	ts, _, err := c.store.ListTopics(lctx)
	cancel()
	if err != nil {
		return nil, err
	}
	var out []orderedTopic
	for _, t := range ts {
		if !t.Ordered {
			continue
		}
		ot, err := c.getOrdered(ctx, t.Name)
		if errors.Is(err, ErrUnknownTopic) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if keep(ot) {
			out = append(out, ot)
		}
	}
	return out, nil
}

// newTransition builds a pending transition of a topic.
func (c *Controller) newTransition(kind Kind, ot orderedTopic, to string, steps []Phase, actor, reason string, started time.Time) *Transition {
	tr := &Transition{
		ID: newID(started), Kind: kind, Topic: ot.topic.Name, From: ot.rec.Primary, To: to, Phase: PhasePending,
		Steps: steps, Started: started.UTC(), Actor: actor, Reason: reason, Queues: ot.topic.Queues, Before: ot.rec,
	}
	if slices.Contains(steps, PhaseBlock) {
		tr.BlockEpoch = ot.rec.Epoch + 1
		if ot.rec.Blocked {
			tr.BlockEpoch = ot.rec.Epoch
		}
	}
	return tr
}

// execute registers transitions (all or none), runs pre (another write
// that must happen with them, such as the traffic policy), starts them
// and waits for their outcomes. The error is the first failure's.
func (c *Controller) execute(ctx context.Context, t *term, trs []*Transition, pre func() error) (Report, error) {
	if err := t.reserve(trs); err != nil {
		return Report{}, err
	}
	if pre != nil {
		if err := pre(); err != nil {
			t.release(trs...)
			return Report{}, err
		}
	}
	chans, err := t.launch(trs)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Transitions: []Outcome{}, Changed: len(trs) > 0 || pre != nil}
	var first error
	for _, ch := range chans {
		select {
		case o := <-ch:
			rep.Transitions = append(rep.Transitions, o)
			if o.Err != nil && first == nil {
				first = o.Err
			}
		case <-ctx.Done():
			return rep, fmt.Errorf("waiting for the transitions, which go on: %w", ctx.Err())
		}
	}
	return rep, first
}
