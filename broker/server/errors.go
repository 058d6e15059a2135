package server

import (
	"google.golang.org/grpc/codes"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/internal/rpcerr"
)

// Reasons carried in the ErrorInfo of every error status (docs/api.md).
const (
	ReasonTopicNotFound    = "TOPIC_NOT_FOUND"
	ReasonTopicExists      = "TOPIC_EXISTS"
	ReasonInvalidName      = "INVALID_NAME"
	ReasonInvalidQueue     = "INVALID_QUEUE"
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonOffsetOutOfRange = "OFFSET_OUT_OF_RANGE"
	ReasonWriteForbidden   = "WRITE_FORBIDDEN"
	ReasonReadForbidden    = "READ_FORBIDDEN"
	ReasonMessageTooLarge  = "MESSAGE_TOO_LARGE"
	ReasonNotFound         = "MESSAGE_NOT_FOUND"
	ReasonCorruption       = "CORRUPTION"
	ReasonClosed           = "BROKER_CLOSED"
	ReasonStaleEpoch       = "STALE_EPOCH"
	ReasonStaleReceipt     = "STALE_RECEIPT"
	ReasonNotLeader        = "NOT_LEADER"
	ReasonLeaseExpired     = "LEASE_EXPIRED"
	ReasonReplicaTimeout   = "REPLICA_TIMEOUT"
	ReasonOffsetMismatch   = "OFFSET_MISMATCH"
)

// errTable is the one place where broker errors become gRPC statuses.
var errTable = rpcerr.Table{
	{Err: broker.ErrUnknownTopic, Code: codes.NotFound, Reason: ReasonTopicNotFound},
	{Err: broker.ErrTopicExists, Code: codes.AlreadyExists, Reason: ReasonTopicExists},
	{Err: broker.ErrInvalidName, Code: codes.InvalidArgument, Reason: ReasonInvalidName},
	{Err: broker.ErrInvalidQueue, Code: codes.InvalidArgument, Reason: ReasonInvalidQueue},
	{Err: broker.ErrMessageTooLarge, Code: codes.InvalidArgument, Reason: ReasonMessageTooLarge},
	{Err: broker.ErrInvalidArgument, Code: codes.InvalidArgument, Reason: ReasonInvalidArgument},
	{Err: broker.ErrOffsetOutOfRange, Code: codes.OutOfRange, Reason: ReasonOffsetOutOfRange},
	{Err: broker.ErrWriteForbidden, Code: codes.FailedPrecondition, Reason: ReasonWriteForbidden},
	{Err: broker.ErrReadForbidden, Code: codes.FailedPrecondition, Reason: ReasonReadForbidden},
	{Err: broker.ErrNotFound, Code: codes.NotFound, Reason: ReasonNotFound},
	{Err: broker.ErrCorruption, Code: codes.DataLoss, Reason: ReasonCorruption},
	{Err: broker.ErrClosed, Code: codes.Unavailable, Reason: ReasonClosed},
	{Err: broker.ErrStaleEpoch, Code: codes.FailedPrecondition, Reason: ReasonStaleEpoch},
	{Err: broker.ErrStaleReceipt, Code: codes.FailedPrecondition, Reason: ReasonStaleReceipt},
	{Err: broker.ErrNotLeader, Code: codes.FailedPrecondition, Reason: ReasonNotLeader},
	{Err: broker.ErrLeaseExpired, Code: codes.Unavailable, Reason: ReasonLeaseExpired},
	{Err: broker.ErrReplicaTimeout, Code: codes.Unavailable, Reason: ReasonReplicaTimeout},
	{Err: broker.ErrOffsetMismatch, Code: codes.FailedPrecondition, Reason: ReasonOffsetMismatch},
}
