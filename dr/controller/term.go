package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// term is one period of leadership: it holds the transitions this leader
// runs, keyed by topic (one at a time per topic), and ends when the
// election session ends or the controller stops. Lock order: stateMu,
// then mu.
type term struct {
	c      *Controller
	ctx    context.Context
	cancel context.CancelFunc
	// key and rev are this candidate's election key and its create
	// revision: state writes compare them.
	key string
	rev int64
	sem chan struct{}
	wg  sync.WaitGroup

	// autoNext is when the leader loop may next try an automatic change
	// of a DC that it could not change (leader loop only).
	autoNext map[string]time.Time

	stateMu sync.Mutex // serializes writes of controller/state
	mu      sync.Mutex
	active  map[string]*Transition // by topic
}

func newTerm(c *Controller, ctx context.Context, key string, rev int64) *term {
	ctx, cancel := context.WithCancel(ctx)
	return &term{
		c: c, ctx: ctx, cancel: cancel, key: key, rev: rev,
		sem: make(chan struct{}, c.cfg.MaxParallel), active: map[string]*Transition{}, autoNext: map[string]time.Time{},
	}
}

// newID names a transition: its start time and a random suffix.
func newID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%s", now.UTC().Format("20060102T150405.000000000Z"), hex.EncodeToString(b[:]))
}

// busy reports whether topic has a transition in this term.
func (t *term) busy(topic string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.active[topic]
	return ok
}

// reserve registers every transition, or none when a topic is busy.
func (t *term) reserve(trs []*Transition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]bool{}
	for _, tr := range trs {
		if cur, ok := t.active[tr.Topic]; ok {
			return errorf(ErrBusy, "topic %s: %s %s is in progress (phase %s)", tr.Topic, cur.Kind, cur.ID, cur.Phase)
		}
		if seen[tr.Topic] {
			return errorf(ErrInvalid, "topic %s named twice", tr.Topic)
		}
		seen[tr.Topic] = true
	}
	for _, tr := range trs {
		tr.Leader = t.c.cfg.ID
		t.active[tr.Topic] = tr
	}
	return nil
}

// release forgets transitions (finished, or refused before they ran).
func (t *term) release(trs ...*Transition) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range trs {
		if t.active[tr.Topic] == tr {
			delete(t.active, tr.Topic)
		}
	}
}

// update changes a transition under the lock and persists the state.
func (t *term) update(tr *Transition, fn func(*Transition)) error {
	t.mu.Lock()
	fn(tr)
	tr.Leader = t.c.cfg.ID
	t.mu.Unlock()
	return t.persist()
}

// snapshot copies a transition under the lock.
func (t *term) snapshot(tr *Transition) Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tr.clone()
}

// transitions lists the term's transitions.
func (t *term) transitions() []Transition {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Transition, 0, len(t.active))
	for _, tr := range t.active {
		out = append(out, tr.clone())
	}
	return out
}

// launch persists reserved transitions and runs each in its own
// goroutine; each channel receives the transition's outcome.
func (t *term) launch(trs []*Transition) ([]<-chan Outcome, error) {
	if len(trs) == 0 {
		return nil, nil
	}
	if err := t.persist(); err != nil {
		t.release(trs...)
		return nil, err
	}
	out := make([]<-chan Outcome, len(trs))
	for i, tr := range trs {
		out[i] = t.start(tr, false)
	}
	return out, nil
}

// start runs one registered transition.
func (t *term) start(tr *Transition, resumed bool) <-chan Outcome {
	ch := make(chan Outcome, 1)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ch <- t.run(tr, resumed)
	}()
	return ch
}

// resume loads controller/state and continues every transition in it.
func (t *term) resume() error {
	var trs []Transition
	err := t.retry(func(ctx context.Context) error {
		var err error
		trs, err = t.c.loadState(ctx)
		return err
	})
	if err != nil {
		return err
	}
	ptrs := make([]*Transition, 0, len(trs))
	for i := range trs {
		tr := &trs[i]
		if !validKind(tr.Kind) {
			t.c.log.Error("dropping a transition of unknown kind from controller/state", "id", tr.ID, "kind", tr.Kind)
			continue
		}
		ptrs = append(ptrs, tr)
	}
	if err := t.reserve(ptrs); err != nil {
		return err
	}
	for _, tr := range ptrs {
		t.c.log.Info("resuming transition", "id", tr.ID, "kind", tr.Kind, "topic", tr.Topic, "from", tr.From, "to", tr.To, "phase", tr.Phase, "previous-leader", tr.Leader)
		t.start(tr, true)
	}
	return nil
}

func validKind(k Kind) bool {
	return k == KindFailover || k == KindSwitchover || k == KindFailback
}
