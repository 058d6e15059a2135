package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
)

// Kind is what a transition does to an ordered topic.
type Kind string

// Transition kinds.
const (
	// KindFailover moves the primary away from a DC that is down (or, when
	// forced, away from a DC that is alive, after blocking and fencing it).
	KindFailover Kind = "failover"
	// KindSwitchover moves the primary to another DC with zero loss:
	// block, fence, wait for the follower, promote.
	KindSwitchover Kind = "switchover"
	// KindFailback returns the primary to the topic's home DC once that
	// DC is back: activate it, let its follower catch up, then switch
	// over.
	KindFailback Kind = "failback"
)

// Phase is a step of a transition. The phase stored in controller/state
// is the step being carried out; every step is idempotent (it re-reads
// the topic's record and does only what is missing), so a leader that
// resumes a transition repeats the stored phase and goes on.
type Phase string

// Phases, in the order they run.
const (
	// PhasePending: accepted and persisted; nothing done yet.
	PhasePending Phase = "pending"
	// PhaseActivate (failback): set the home DC active.
	PhaseActivate Phase = "activate"
	// PhaseFollow (failback): wait until the home DC's follower copies
	// have what the current primary had, before pausing writes.
	PhaseFollow Phase = "follow"
	// PhaseBlock: CAS {from, e+1, blocked}; no DC takes writes from here.
	PhaseBlock Phase = "block"
	// PhaseFence: Fence(topic, e+1) on every alive broker of the source DC
	// (best effort in a forced failover).
	PhaseFence Phase = "fence"
	// PhaseWaitLease (forced failover): wait until every alive broker of
	// the source was fenced or is gone, or the lease TTL passed since the
	// block.
	PhaseWaitLease Phase = "wait-lease"
	// PhaseCatchUp: wait until the target's followers reach the fenced
	// ends of every queue.
	PhaseCatchUp Phase = "catch-up"
	// PhasePromote: CAS {to, e+1, unblocked}: the target accepts writes.
	PhasePromote Phase = "promote"
	// PhaseMarkDown (failover of a DC): set the source DC down.
	PhaseMarkDown Phase = "mark-down"
	// PhaseRollback: CAS {from, e+1, unblocked} after a failed step: the
	// source accepts writes again.
	PhaseRollback Phase = "rollback"
)

// Transition is one failover, switchover or failback of one ordered
// topic, as stored in controller/state while it runs.
type Transition struct {
	ID    string `json:"id"`
	Kind  Kind   `json:"kind"`
	Topic string `json:"topic"`
	// From is the primary when the transition started, To the new one.
	From  string `json:"from"`
	To    string `json:"to"`
	Phase Phase  `json:"phase"`
	// Steps are the phases this transition runs, decided when it starts.
	Steps   []Phase   `json:"steps"`
	Started time.Time `json:"started"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
	// Queues is the topic's queue count.
	Queues int `json:"queues"`
	// Before is the topic's record when the transition started.
	Before meta.Ordered `json:"before"`
	// BlockEpoch is the epoch of the blocked record (block phase).
	BlockEpoch uint64 `json:"block_epoch,omitempty"`
	// BlockedAt is when the blocked record was seen written.
	BlockedAt time.Time `json:"blocked_at,omitzero"`
	// Ends are the fenced queue ends, by queue id.
	Ends []int64 `json:"ends,omitempty"`
	// Fenced are the source brokers a forced failover fenced.
	Fenced []string `json:"fenced,omitempty"`
	// Error is why a transition is rolling back.
	Error string `json:"error,omitempty"`
	// Leader is the controller that last wrote the transition.
	Leader string `json:"leader"`
}

func (t Transition) clone() Transition {
	t.Steps = slices.Clone(t.Steps)
	t.Ends = slices.Clone(t.Ends)
	t.Fenced = slices.Clone(t.Fenced)
	return t
}

func (t Transition) has(p Phase) bool { return slices.Contains(t.Steps, p) }

// stateDoc is the JSON of controller/state.
type stateDoc struct {
	Version     int          `json:"version"`
	Leader      string       `json:"leader"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Transitions []Transition `json:"transitions"`
}

// loadState reads controller/state (empty when absent).
func (c *Controller) loadState(ctx context.Context) ([]Transition, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	return ReadTransitions(ctx, c.store)
}

// ReadTransitions returns the transitions in progress as the leader
// recorded them in controller/state: what an observer (a drill, a
// dashboard) reads without asking a controller.
func ReadTransitions(ctx context.Context, store *meta.Store) ([]Transition, error) {
	var doc stateDoc
	_, err := store.GetJSON(ctx, meta.KeyControllerState, &doc)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if doc.Version != stateVersion {
		return nil, fmt.Errorf("%w: %s: schema version %d, this build reads %d", meta.ErrCorrupt, meta.KeyControllerState, doc.Version, stateVersion)
	}
	return doc.Transitions, nil
}

// stateVersion is the schema version of controller/state.
const stateVersion = 1

// persist writes every transition of the term to controller/state, in a
// transaction that also requires this candidate's election key: a
// controller that lost the election cannot write the state.
func (t *term) persist() error {
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	t.mu.Lock()
	doc := stateDoc{Version: stateVersion, Leader: t.c.cfg.ID, UpdatedAt: t.c.clock.Now().UTC(), Transitions: []Transition{}}
	for _, tr := range t.active {
		doc.Transitions = append(doc.Transitions, tr.clone())
	}
	t.mu.Unlock()
	sort.Slice(doc.Transitions, func(i, j int) bool { return doc.Transitions[i].ID < doc.Transitions[j].ID })
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	key := t.c.store.Key(meta.KeyControllerState)
	leader := clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.rev)
	return t.retry(func(ctx context.Context) error {
		resp, err := t.c.cli.Txn(ctx).If(leader).Then(clientv3.OpPut(key, string(b))).Commit()
		if err != nil {
			return errorf(meta.ErrUnavailable, "write controller state: %v", err)
		}
		if !resp.Succeeded {
			t.cancel()
			return errorf(ErrNotLeader, "controller %s lost the election before writing controller/state", t.c.cfg.ID)
		}
		t.c.m.stateWrites.Inc()
		return nil
	})
}

// retry runs a metadata request with the request timeout until it
// succeeds, fails for another reason than unavailability, or the term
// ends.
func (t *term) retry(fn func(ctx context.Context) error) error {
	for {
		ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(t.ctx), t.c.cfg.MetaTimeout)
		err := fn(ctx)
		cancel()
		if err == nil || !errors.Is(err, meta.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if t.ctx.Err() != nil {
			return errorf(ErrInterrupted, "leadership ended: %v", err)
		}
		t.c.log.Warn("metadata request failed; retrying", "err", err)
		select {
		case <-t.ctx.Done():
		case <-t.c.clock.After(retryBackoff):
		}
	}
}

// retryBackoff is the pause between metadata retries while leading.
const retryBackoff = 100 * time.Millisecond
