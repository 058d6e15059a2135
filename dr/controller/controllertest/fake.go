// Package controllertest provides a fake of the brokers the controller
// calls (controller.BrokerOps), for tests of the controller and of the
// tools that drive it.
package controllertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/duomq/duomq/dr/controller"
)

// FenceCall is one Fence the fake received.
type FenceCall struct {
	Addr  string
	Topic string
	Epoch uint64
}

// Brokers is an in-memory BrokerOps: per broker address and topic, each
// queue's next offset and the groups' committed offsets. Tests set the
// offsets, observe the calls, and inject failures.
type Brokers struct {
	mu        sync.Mutex
	next      map[string]map[string]map[int]int64 // addr -> topic -> queue -> next offset
	epochs    map[string]map[string]uint64
	consumers map[string]map[string][]controller.ConsumerOffset
	fences    []FenceCall
	failFence map[string]error
	down      map[string]bool
	outOfSync map[string]map[string][]string // addr -> topic -> follower DCs
	polls     map[string]int
	// OnFence runs after a Fence was applied; OnReplicaState before a
	// ReplicaState answers (with how many that broker answered before).
	onFence        func(FenceCall)
	onReplicaState func(addr, topic string, n int)
}

// New returns a fake with no queues.
func New() *Brokers {
	return &Brokers{
		next: map[string]map[string]map[int]int64{}, epochs: map[string]map[string]uint64{},
		consumers: map[string]map[string][]controller.ConsumerOffset{}, failFence: map[string]error{},
		down: map[string]bool{}, polls: map[string]int{}, outOfSync: map[string]map[string][]string{},
	}
}

// SetOutOfSync sets the follower DCs a broker reports out of a topic's
// in-sync set.
func (b *Brokers) SetOutOfSync(addr, topic string, dcs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.outOfSync[addr] == nil {
		b.outOfSync[addr] = map[string][]string{}
	}
	b.outOfSync[addr][topic] = dcs
}

// SetNext sets a queue's next offset on a broker.
func (b *Brokers) SetNext(addr, topic string, queue int, next int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next[addr] == nil {
		b.next[addr] = map[string]map[int]int64{}
	}
	if b.next[addr][topic] == nil {
		b.next[addr][topic] = map[int]int64{}
	}
	b.next[addr][topic][queue] = next
}

// Next returns a queue's next offset on a broker.
func (b *Brokers) Next(addr, topic string, queue int) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next[addr][topic][queue]
}

// SetConsumerOffset sets a group's committed offset on a broker.
func (b *Brokers) SetConsumerOffset(addr, group, topic string, queue int, offset int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.consumers[addr] == nil {
		b.consumers[addr] = map[string][]controller.ConsumerOffset{}
	}
	b.consumers[addr][topic] = append(b.consumers[addr][topic], controller.ConsumerOffset{Group: group, Topic: topic, Queue: queue, Offset: offset})
}

// FailFence makes Fence on addr fail with err (nil: succeed again).
func (b *Brokers) FailFence(addr string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		delete(b.failFence, addr)
		return
	}
	b.failFence[addr] = err
}

// SetDown makes every call to addr fail (unreachable broker).
func (b *Brokers) SetDown(addr string, down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down[addr] = down
}

// OnFence sets a function run after each applied Fence.
func (b *Brokers) OnFence(fn func(FenceCall)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onFence = fn
}

// OnReplicaState sets a function run before each ReplicaState answers.
func (b *Brokers) OnReplicaState(fn func(addr, topic string, n int)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onReplicaState = fn
}

// Fences returns the Fence calls applied so far.
func (b *Brokers) Fences() []FenceCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.fences)
}

// Epoch returns the epoch a broker was fenced at for a topic (0: never).
func (b *Brokers) Epoch(addr, topic string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.epochs[addr][topic]
}

// ReplicaStateCalls returns how many ReplicaState calls addr answered.
func (b *Brokers) ReplicaStateCalls(addr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.polls[addr]
}

func (b *Brokers) queues(addr, topic string) []controller.QueueState {
	qs := b.next[addr][topic]
	out := make([]controller.QueueState, 0, len(qs))
	for _, q := range slices.Sorted(maps.Keys(qs)) {
		out = append(out, controller.QueueState{Queue: q, NextOffset: qs[q], LastEpoch: b.epochs[addr][topic]})
	}
	return out
}

func (b *Brokers) unreachable(addr string) error {
	if b.down[addr] {
		return fmt.Errorf("%w: broker %s unreachable (fake)", controller.ErrBroker, addr)
	}
	return nil
}

// Fence implements controller.BrokerOps.
func (b *Brokers) Fence(_ context.Context, addr, topic string, epoch uint64) ([]controller.QueueState, error) {
	b.mu.Lock()
	if err := b.unreachable(addr); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	if err := b.failFence[addr]; err != nil {
		b.mu.Unlock()
		return nil, err
	}
	if b.epochs[addr] == nil {
		b.epochs[addr] = map[string]uint64{}
	}
	b.epochs[addr][topic] = max(b.epochs[addr][topic], epoch)
	call := FenceCall{Addr: addr, Topic: topic, Epoch: epoch}
	b.fences = append(b.fences, call)
	qs := b.queues(addr, topic)
	fn := b.onFence
	b.mu.Unlock()
	if fn != nil {
		fn(call)
	}
	return qs, nil
}

// ReplicaState implements controller.BrokerOps.
func (b *Brokers) ReplicaState(_ context.Context, addr, topic string) (controller.ReplicaState, error) {
	b.mu.Lock()
	if err := b.unreachable(addr); err != nil {
		b.mu.Unlock()
		return controller.ReplicaState{}, err
	}
	n := b.polls[addr]
	b.polls[addr]++
	fn := b.onReplicaState
	b.mu.Unlock()
	if fn != nil {
		fn(addr, topic, n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return controller.ReplicaState{Epoch: b.epochs[addr][topic], Queues: b.queues(addr, topic), OutOfSync: b.outOfSync[addr][topic]}, nil
}

// ConsumerOffsets implements controller.BrokerOps.
func (b *Brokers) ConsumerOffsets(_ context.Context, addr, topic string) ([]controller.ConsumerOffset, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unreachable(addr); err != nil {
		return nil, err
	}
	return slices.Clone(b.consumers[addr][topic]), nil
}

// SyncConsumerOffsets implements controller.BrokerOps: it records the
// offsets as the broker's own (raised only).
func (b *Brokers) SyncConsumerOffsets(_ context.Context, addr string, offsets []controller.ConsumerOffset) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unreachable(addr); err != nil {
		return err
	}
	if b.consumers[addr] == nil {
		b.consumers[addr] = map[string][]controller.ConsumerOffset{}
	}
	for _, o := range offsets {
		cur := b.consumers[addr][o.Topic]
		i := slices.IndexFunc(cur, func(c controller.ConsumerOffset) bool { return c.Group == o.Group && c.Queue == o.Queue })
		switch {
		case i < 0:
			b.consumers[addr][o.Topic] = append(cur, o)
		case cur[i].Offset < o.Offset:
			cur[i].Offset = o.Offset
		}
	}
	return nil
}

// QueueOffsets implements controller.BrokerOps.
func (b *Brokers) QueueOffsets(_ context.Context, addr, topic string, queue int) (int64, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unreachable(addr); err != nil {
		return 0, 0, err
	}
	return 0, b.next[addr][topic][queue], nil
}

var _ controller.BrokerOps = (*Brokers)(nil)
