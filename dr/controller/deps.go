package controller

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duomq/duomq/dr/meta"
)

// BrokerOps are the broker calls the controller makes, addressed by a
// broker's address (meta.Alive.Address). GRPCBrokers implements them over
// the broker service; tests pass a fake.
type BrokerOps interface {
	// Fence raises an ordered topic's epoch on the broker and blocks its
	// writes at once, returning every queue's end.
	Fence(ctx context.Context, addr, topic string, epoch uint64) ([]QueueState, error)
	// ReplicaState reports the broker's queues of a topic and its role.
	ReplicaState(ctx context.Context, addr, topic string) (ReplicaState, error)
	// ConsumerOffsets lists the committed offsets of every group that
	// consumes the topic on the broker.
	ConsumerOffsets(ctx context.Context, addr, topic string) ([]ConsumerOffset, error)
	// QueueOffsets returns a queue's min and max (next) offsets.
	QueueOffsets(ctx context.Context, addr, topic string, queue int) (min, max int64, err error)
	// SyncConsumerOffsets raises committed offsets on the broker (never
	// backwards, never on a queue consumed there).
	SyncConsumerOffsets(ctx context.Context, addr string, offsets []ConsumerOffset) error
}

// QueueState is one queue of a topic on one broker.
type QueueState struct {
	Queue int `json:"queue"`
	// NextOffset is the offset the next record of the queue gets.
	NextOffset int64 `json:"next_offset"`
	// LastEpoch is the epoch of the queue's last record.
	LastEpoch uint64 `json:"last_epoch"`
}

// ReplicaState is a broker's view of an ordered topic.
type ReplicaState struct {
	Epoch   uint64       `json:"epoch"`
	Primary string       `json:"primary"`
	Blocked bool         `json:"blocked"`
	Leader  bool         `json:"leader"`
	Queues  []QueueState `json:"queues"`
	// OutOfSync are the follower DCs out of a sync topic's in-sync set
	// on this broker (the primary's).
	OutOfSync []string `json:"out_of_sync,omitempty"`
}

// ConsumerOffset is a group's committed offset in one queue.
type ConsumerOffset struct {
	Group  string `json:"group"`
	Topic  string `json:"topic"`
	Queue  int    `json:"queue"`
	Offset int64  `json:"offset"`
}

// Clock is the time source of waits and measurements.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Hooks are fault points for tests of crash-critical paths.
type Hooks struct {
	// AfterPhase runs after a transition carried out a phase (PhasePending:
	// once it is accepted and persisted, before its first step), with a
	// copy of the transition. An error stops the
	// transition there as a crash of the leader would: it stays in
	// controller/state, is neither rolled back nor audited, and its topic
	// stays busy until the next leader resumes it.
	AfterPhase func(t Transition, p Phase) error
}

// Deps are what a controller uses and does not own.
type Deps struct {
	// Store is the metadata store (required); its client holds the
	// election.
	Store *meta.Store
	// Brokers reach the brokers (required).
	Brokers BrokerOps
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the controller's metrics (nil: unregistered).
	Registerer prometheus.Registerer
	// Clock defaults to the system clock.
	Clock Clock
	Hooks Hooks
}
