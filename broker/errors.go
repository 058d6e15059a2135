package broker

import (
	"errors"
	"fmt"

	"github.com/duomq/duomq/broker/commitlog"
)

// Sentinel errors of the broker. Every error the broker returns wraps one of
// these (or commitlog.ErrCorruption), so the API boundary can map it to a
// status with errors.Is.
var (
	// ErrUnknownTopic: the topic does not exist on this broker.
	ErrUnknownTopic = errors.New("broker: unknown topic")
	// ErrTopicExists: CreateTopic of a topic that exists.
	ErrTopicExists = errors.New("broker: topic exists")
	// ErrInvalidName: an empty or malformed topic or group name.
	ErrInvalidName = errors.New("broker: invalid name")
	// ErrInvalidQueue: a queue id outside the topic's queues.
	ErrInvalidQueue = errors.New("broker: invalid queue id")
	// ErrInvalidArgument: any other malformed request field.
	ErrInvalidArgument = errors.New("broker: invalid argument")
	// ErrOffsetOutOfRange: a read below the queue's min offset (expired) or
	// above its max offset.
	ErrOffsetOutOfRange = errors.New("broker: offset out of range")
	// ErrWriteForbidden: the broker or the topic does not accept writes.
	ErrWriteForbidden = errors.New("broker: write forbidden")
	// ErrReadForbidden: the broker or the topic does not serve reads.
	ErrReadForbidden = errors.New("broker: read forbidden")
	// ErrMessageTooLarge: a body over the limit; see *TooLargeError.
	ErrMessageTooLarge = errors.New("broker: message too large")
	// ErrNotFound: a look-up by id or key found nothing.
	ErrNotFound = errors.New("broker: message not found")
	// ErrClosed: the broker is closed.
	ErrClosed = errors.New("broker: closed")
	// ErrStaleEpoch: a send to a fenced (ordered) topic carried an epoch
	// older than the topic's, or none; the sender's view of the primary is
	// out of date.
	ErrStaleEpoch = errors.New("broker: stale epoch")
	// ErrStaleReceipt: an Ack or ChangeInvisibleDuration named a pop that is
	// no longer current (acked, redelivered, its invisibility changed, or
	// the broker restarted since).
	ErrStaleReceipt = errors.New("broker: stale receipt handle")
	// ErrNotLeader: a write of an ordered topic reached a broker whose DC
	// is not the topic's primary, or while the topic is blocked for a
	// switchover; or a replica append reached the leader itself.
	ErrNotLeader = errors.New("broker: not the leader of the topic")
	// ErrLeaseExpired: the broker has not renewed its liveness lease with
	// the metadata quorum within the lease TTL, so it accepts no ordered
	// writes (another DC may be taking over).
	ErrLeaseExpired = errors.New("broker: lease expired")
	// ErrReplicaTimeout: a sync-replicated send is stored here but a
	// required follower did not confirm it in time; retrying the same ids
	// (idempotent) waits again and stores nothing twice. Under sync policy
	// fail it also refuses a send at once, storing nothing, while a
	// follower DC is out of the topic's in-sync set.
	ErrReplicaTimeout = errors.New("broker: replica did not confirm in time")
	// ErrOffsetMismatch: a replica append or fetch names an offset that is
	// not where this queue is.
	ErrOffsetMismatch = errors.New("broker: queue offset mismatch")
	// ErrCorruption is the storage engine's corruption error: a record
	// failed its checksum. It is never served and never swallowed.
	ErrCorruption = commitlog.ErrCorruption
)

// TooLargeError says which message was over which limit.
type TooLargeError struct {
	Index int   // position of the message in the batch
	Size  int   // its body size in bytes
	Limit int64 // the limit in bytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("broker: message %d body is %d bytes, over the limit of %d bytes (max-message-bytes)", e.Index, e.Size, e.Limit)
}

// Unwrap makes errors.Is(err, ErrMessageTooLarge) hold.
func (e *TooLargeError) Unwrap() error { return ErrMessageTooLarge }
