package proxy

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/duomq/duomq/internal/rpcerr"
)

// Sentinel errors of the proxy. Every error a handler returns wraps one of
// these, or is a broker's status passed through unchanged (its reason is
// the broker's, docs/api.md).
var (
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("proxy: invalid config")
	// ErrInvalidArgument: a malformed request field.
	ErrInvalidArgument = errors.New("proxy: invalid argument")
	// ErrInvalidName: a malformed topic or group name.
	ErrInvalidName = errors.New("proxy: invalid name")
	// ErrReservedProperty: a property whose name starts with "__" (those
	// are the brokers').
	ErrReservedProperty = errors.New("proxy: reserved property")
	// ErrMessageTooLarge: a body over its topic's max_message_bytes;
	// nothing of the request was sent.
	ErrMessageTooLarge = errors.New("proxy: message too large")
	// ErrTopicNotFound, ErrGroupNotFound: not in the metadata; the message
	// names the command that creates it.
	ErrTopicNotFound = errors.New("proxy: topic not found")
	ErrGroupNotFound = errors.New("proxy: group not found")
	// ErrMessageNotFound: a trace found the message on no broker.
	ErrMessageNotFound = errors.New("proxy: message not found")
	// ErrNotSubscribed: the group does not subscribe to the topic.
	ErrNotSubscribed = errors.New("proxy: group does not subscribe to the topic")
	// ErrUnsupported: a request the proxy does not serve (receive of a
	// broadcast group).
	ErrUnsupported = errors.New("proxy: unsupported")
	// ErrUnavailable: no DC could take an unordered write, or no broker
	// could be reached; the message gives each DC's reason.
	ErrUnavailable = errors.New("proxy: unavailable")
	// ErrPrimaryUnavailable: the broker owning an ordered topic's queue in
	// its primary DC cannot be reached. Ordered writes never fall back to
	// another DC.
	ErrPrimaryUnavailable = errors.New("proxy: ordered topic's primary unavailable")
	// ErrStaleEpoch: the broker refused an ordered write's epoch even
	// after the proxy re-read the topic's fencing record.
	ErrStaleEpoch = errors.New("proxy: stale epoch")
	// ErrBadReceiptHandle: a receipt handle this proxy cannot decode.
	ErrBadReceiptHandle = errors.New("proxy: malformed receipt handle")
	// ErrThrottled: over a topic's or a client's rate; see ThrottledError.
	ErrThrottled = errors.New("proxy: throttled")
	// Authentication: no credentials, an unknown access key, a signature
	// that does not match, or a timestamp too far from the proxy's clock.
	ErrMissingCredentials = errors.New("proxy: missing credentials")
	ErrUnknownAccessKey   = errors.New("proxy: unknown access key")
	ErrBadSignature       = errors.New("proxy: bad signature")
	ErrClockSkew          = errors.New("proxy: request timestamp outside the allowed skew")
	// ErrPermissionDenied: the app may not use the topic or group.
	ErrPermissionDenied = errors.New("proxy: permission denied")
	// ErrClosed: the proxy is shutting down.
	ErrClosed = errors.New("proxy: closed")
)

// ThrottledError is ErrThrottled with the delay after which the call may
// succeed.
type ThrottledError struct {
	// What is the limit, e.g. `topic "orders"` or `client "c1"`.
	What       string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("proxy: throttled: %s is over its rate limit; retry after %v", e.What, e.RetryAfter)
}

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// Reasons carried in the ErrorInfo of the proxy's own error statuses
// (docs/api.md).
const (
	ReasonInvalidArgument     = "INVALID_ARGUMENT"
	ReasonInvalidName         = "INVALID_NAME"
	ReasonReservedProperty    = "RESERVED_PROPERTY"
	ReasonMessageTooLarge     = "MESSAGE_TOO_LARGE"
	ReasonTopicNotFound       = "TOPIC_NOT_FOUND"
	ReasonGroupNotFound       = "GROUP_NOT_FOUND"
	ReasonNotSubscribed       = "NOT_SUBSCRIBED"
	ReasonMessageNotFound     = "MESSAGE_NOT_FOUND"
	ReasonUnsupported         = "UNSUPPORTED"
	ReasonUnavailable         = "UNAVAILABLE"
	ReasonPrimaryUnavailable  = "PRIMARY_UNAVAILABLE"
	ReasonStaleEpoch          = "STALE_EPOCH"
	ReasonBadReceiptHandle    = "INVALID_RECEIPT_HANDLE"
	ReasonThrottled           = "THROTTLED"
	ReasonMissingCredentials  = "MISSING_CREDENTIALS"
	ReasonUnknownAccessKey    = "UNKNOWN_ACCESS_KEY"
	ReasonBadSignature        = "BAD_SIGNATURE"
	ReasonClockSkew           = "CLOCK_SKEW"
	ReasonPermissionDenied    = "PERMISSION_DENIED"
	ReasonClosed              = "PROXY_CLOSED"
	reasonBrokerStaleEpoch    = "STALE_EPOCH" // the broker's reason for a refused epoch
	reasonBrokerNotLeader     = "NOT_LEADER"  // the broker does not lead the topic (moved or blocked)
	reasonBrokerTopicNotFound = "TOPIC_NOT_FOUND"
	reasonBrokerNotFound      = "MESSAGE_NOT_FOUND" // a look-up found nothing on the broker
	// The broker is up but cannot take the write now: its follower DC is
	// out of the in-sync set or slow, or its lease lapsed.
	reasonBrokerReplicaTimeout = "REPLICA_TIMEOUT"
	reasonBrokerLeaseExpired   = "LEASE_EXPIRED"
)

// errTable is the one place where proxy errors become gRPC statuses.
var errTable = rpcerr.Table{
	{Err: ErrInvalidName, Code: codes.InvalidArgument, Reason: ReasonInvalidName},
	{Err: ErrReservedProperty, Code: codes.InvalidArgument, Reason: ReasonReservedProperty},
	{Err: ErrMessageTooLarge, Code: codes.InvalidArgument, Reason: ReasonMessageTooLarge},
	{Err: ErrBadReceiptHandle, Code: codes.InvalidArgument, Reason: ReasonBadReceiptHandle},
	{Err: ErrInvalidArgument, Code: codes.InvalidArgument, Reason: ReasonInvalidArgument},
	{Err: ErrTopicNotFound, Code: codes.NotFound, Reason: ReasonTopicNotFound},
	{Err: ErrGroupNotFound, Code: codes.NotFound, Reason: ReasonGroupNotFound},
	{Err: ErrMessageNotFound, Code: codes.NotFound, Reason: ReasonMessageNotFound},
	{Err: ErrNotSubscribed, Code: codes.FailedPrecondition, Reason: ReasonNotSubscribed},
	{Err: ErrUnsupported, Code: codes.FailedPrecondition, Reason: ReasonUnsupported},
	{Err: ErrStaleEpoch, Code: codes.FailedPrecondition, Reason: ReasonStaleEpoch},
	{Err: ErrPrimaryUnavailable, Code: codes.Unavailable, Reason: ReasonPrimaryUnavailable},
	{Err: ErrUnavailable, Code: codes.Unavailable, Reason: ReasonUnavailable},
	{Err: ErrMissingCredentials, Code: codes.Unauthenticated, Reason: ReasonMissingCredentials},
	{Err: ErrUnknownAccessKey, Code: codes.Unauthenticated, Reason: ReasonUnknownAccessKey},
	{Err: ErrBadSignature, Code: codes.Unauthenticated, Reason: ReasonBadSignature},
	{Err: ErrClockSkew, Code: codes.Unauthenticated, Reason: ReasonClockSkew},
	{Err: ErrPermissionDenied, Code: codes.PermissionDenied, Reason: ReasonPermissionDenied},
	{Err: ErrClosed, Code: codes.Unavailable, Reason: ReasonClosed},
}

// toStatus converts a handler's error at the API boundary. Broker
// statuses pass through with their code and reason; proxy errors never
// wrap a status, so the table sees them.
func toStatus(err error) error {
	var te *ThrottledError
	if errors.As(err, &te) {
		st := status.New(codes.ResourceExhausted, err.Error())
		d, derr := st.WithDetails(
			&errdetails.ErrorInfo{Reason: ReasonThrottled, Domain: rpcerr.Domain},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(te.RetryAfter)},
		)
		if derr == nil {
			st = d
		}
		return st.Err()
	}
	return errTable.Status(err)
}

// errorf formats an error of a kind; %v (never %w) includes a broker
// status so that the proxy's reason, not the broker's, reaches the client.
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// kindError is an operator-readable message wrapping one sentinel without
// repeating the sentinel's text.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Governance: unknown topics and groups are refused with the command that
// creates them, as the metadata store does.

func topicNotFound(name string) error {
	return errorf(ErrTopicNotFound, "topic %q does not exist: create it with: duomq topic create %s --queues N", name, name)
}

func groupNotFound(name string) error {
	return errorf(ErrGroupNotFound, "group %q does not exist: create it with: duomq group create %s", name, name)
}

// codeOf is the gRPC code of a handler's converted error, for metrics.
func codeOf(err error) string { return status.Code(err).String() }
