package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/internal/rpcerr"
)

// Sentinel errors. Every error a Client returns for a refused or failed call
// wraps one of these, so callers branch with errors.Is; the *Error it comes
// in keeps the server's message, code and reason.
var (
	// ErrTopicNotFound: the topic does not exist (reason TOPIC_NOT_FOUND).
	ErrTopicNotFound = errors.New("duomq: topic not found")
	// ErrGroupNotFound: the consumer group does not exist (GROUP_NOT_FOUND).
	ErrGroupNotFound = errors.New("duomq: consumer group not found")
	// ErrMessageNotFound: a trace found the message nowhere
	// (MESSAGE_NOT_FOUND).
	ErrMessageNotFound = errors.New("duomq: message not found")
	// ErrNotSubscribed: the group does not subscribe to the topic
	// (NOT_SUBSCRIBED): add the subscription with duomq group update.
	ErrNotSubscribed = errors.New("duomq: group does not subscribe to the topic")
	// ErrMessageTooLarge: a body over the topic's or the client's limit
	// (MESSAGE_TOO_LARGE, or a request over the server's receive limit).
	ErrMessageTooLarge = errors.New("duomq: message too large")
	// ErrInvalidArgument: a malformed request: bad name, empty body, an
	// ordered send without sharding key, ... (INVALID_ARGUMENT).
	ErrInvalidArgument = errors.New("duomq: invalid argument")
	// ErrThrottled: the proxy refused the call for now (RESOURCE_EXHAUSTED);
	// the SDK retries it after the server's RetryInfo delay.
	ErrThrottled = errors.New("duomq: throttled")
	// ErrUnauthenticated: missing or wrong access key or signature.
	ErrUnauthenticated = errors.New("duomq: unauthenticated")
	// ErrPermissionDenied: the access key may not do this.
	ErrPermissionDenied = errors.New("duomq: permission denied")
	// ErrUnavailable: the proxy, or the brokers behind it, could not be
	// reached; the SDK retries these.
	ErrUnavailable = errors.New("duomq: unavailable")
	// ErrWriteForbidden: the topic does not take writes here now: the
	// broker refuses writes, or an ordered topic's epoch moved on during a
	// switchover (WRITE_FORBIDDEN, STALE_EPOCH; not retried by the SDK).
	ErrWriteForbidden = errors.New("duomq: write forbidden")
	// ErrReceiptInvalid: an ack or invisibility change with a receipt handle
	// that expired or was already settled.
	ErrReceiptInvalid = errors.New("duomq: receipt handle invalid or expired")
	// ErrTimeout: the call ran out of time (per-attempt timeout, or the
	// caller's deadline).
	ErrTimeout = errors.New("duomq: timeout")
	// ErrNoIDC: the client could not determine its IDC while it needs one
	// to choose among several proxies.
	ErrNoIDC = errors.New("duomq: IDC unknown")
	// ErrClosed: the client, producer or consumer was closed.
	ErrClosed = errors.New("duomq: closed")
	// ErrServer: any other failure reported by the server.
	ErrServer = errors.New("duomq: server error")
)

// Error is a failed call: the operation, the status code and reason the
// server gave, and the sentinel it maps to.
type Error struct {
	// Op is the call, e.g. "send to orders".
	Op string
	// Code and Reason are the server's status code and ErrorInfo reason
	// (Reason is empty when the server gave none).
	Code   codes.Code
	Reason string
	// Message is the server's own message.
	Message string
	// RetryDelay is the server's RetryInfo delay, if any.
	RetryDelay time.Duration

	kind  error
	cause error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: %v", e.Op, e.kind)
	}
	return fmt.Sprintf("%s: %s", e.Op, e.Message)
}

// Unwrap gives the sentinel and the original error (a gRPC status or a
// context error), so both errors.Is(err, ErrTopicNotFound) and
// status.Code(err) work.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// GRPCStatus exposes the server's status to status.FromError.
func (e *Error) GRPCStatus() *status.Status {
	if st, ok := status.FromError(e.cause); ok && e.cause != nil {
		return st
	}
	return status.New(e.Code, e.Error())
}

// reasonKinds maps ErrorInfo reasons to sentinels; reasons win over codes.
var reasonKinds = map[string]error{
	"TOPIC_NOT_FOUND":        ErrTopicNotFound,
	"GROUP_NOT_FOUND":        ErrGroupNotFound,
	"NOT_SUBSCRIBED":         ErrNotSubscribed,
	"MESSAGE_NOT_FOUND":      ErrMessageNotFound,
	"MESSAGE_TOO_LARGE":      ErrMessageTooLarge,
	"INVALID_NAME":           ErrInvalidArgument,
	"INVALID_ARGUMENT":       ErrInvalidArgument,
	"INVALID_QUEUE":          ErrInvalidArgument,
	"RESERVED_PROPERTY":      ErrInvalidArgument,
	"UNSUPPORTED":            ErrInvalidArgument,
	"THROTTLED":              ErrThrottled,
	"MISSING_CREDENTIALS":    ErrUnauthenticated,
	"UNKNOWN_ACCESS_KEY":     ErrUnauthenticated,
	"BAD_SIGNATURE":          ErrUnauthenticated,
	"CLOCK_SKEW":             ErrUnauthenticated,
	"PERMISSION_DENIED":      ErrPermissionDenied,
	"WRITE_FORBIDDEN":        ErrWriteForbidden,
	"STALE_EPOCH":            ErrWriteForbidden,
	"INVALID_RECEIPT_HANDLE": ErrReceiptInvalid,
	"UNAVAILABLE":            ErrUnavailable,
	"PRIMARY_UNAVAILABLE":    ErrUnavailable,
	"PROXY_CLOSED":           ErrUnavailable,
	"BROKER_CLOSED":          ErrUnavailable,
	"DEADLINE_EXCEEDED":      ErrTimeout,
}

// codeKinds maps status codes to sentinels when the reason is unknown.
var codeKinds = map[codes.Code]error{
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.ResourceExhausted:  ErrThrottled,
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.PermissionDenied:   ErrPermissionDenied,
	codes.Unavailable:        ErrUnavailable,
	codes.FailedPrecondition: ErrWriteForbidden,
	codes.DeadlineExceeded:   ErrTimeout,
	codes.Canceled:           context.Canceled,
}

// wrapErr turns an error of a gRPC call into an *Error (nil stays nil).
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Op: op, Code: codes.DeadlineExceeded, Message: err.Error(), kind: ErrTimeout, cause: err}
	case errors.Is(err, context.Canceled):
		return &Error{Op: op, Code: codes.Canceled, Message: err.Error(), kind: context.Canceled, cause: err}
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Op: op, Code: codes.Unknown, Message: err.Error(), kind: ErrServer, cause: err}
	}
	e = &Error{Op: op, Code: st.Code(), Reason: rpcerr.Reason(err), Message: st.Message(), cause: err}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			e.RetryDelay = ri.GetRetryDelay().AsDuration()
		}
	}
	e.kind = classify(st.Code(), e.Reason, st.Message())
	return e
}

func classify(code codes.Code, reason, msg string) error {
	if k, ok := reasonKinds[reason]; ok {
		return k
	}
	switch {
	case code == codes.ResourceExhausted && isSizeLimit(msg):
		// gRPC's own receive limit: the request is too big, waiting won't help.
		return ErrMessageTooLarge
	case code == codes.NotFound && strings.Contains(strings.ToLower(msg), "group"):
		return ErrGroupNotFound
	case code == codes.NotFound && strings.Contains(strings.ToLower(msg), "topic"):
		return ErrTopicNotFound
	case code == codes.NotFound && strings.Contains(strings.ToLower(msg), "receipt"):
		return ErrReceiptInvalid
	}
	if k, ok := codeKinds[code]; ok {
		return k
	}
	return ErrServer
}

func isSizeLimit(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "larger than max") || strings.Contains(m, "message too large")
}
