package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/internal/rpcerr"
)

func TestWrapErrMapsReasons(t *testing.T) {
	cases := []struct {
		err  error
		want error
	}{
		{rpcerr.New(codes.NotFound, "TOPIC_NOT_FOUND", `topic "x" does not exist`), ErrTopicNotFound},
		{rpcerr.New(codes.NotFound, "GROUP_NOT_FOUND", `group "g" does not exist`), ErrGroupNotFound},
		{rpcerr.New(codes.FailedPrecondition, "NOT_SUBSCRIBED", "no"), ErrNotSubscribed},
		{rpcerr.New(codes.InvalidArgument, "MESSAGE_TOO_LARGE", "body of 5 MiB over the limit 4194304"), ErrMessageTooLarge},
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (1 vs. 0)"), ErrMessageTooLarge},
		{throttled(0), ErrThrottled},
		{rpcerr.New(codes.Unauthenticated, "BAD_SIGNATURE", "no"), ErrUnauthenticated},
		{status.Error(codes.Unauthenticated, "no"), ErrUnauthenticated},
		{rpcerr.New(codes.PermissionDenied, "PERMISSION_DENIED", "no"), ErrPermissionDenied},
		{rpcerr.New(codes.Unavailable, "PRIMARY_UNAVAILABLE", "no"), ErrUnavailable},
		{status.Error(codes.Unavailable, "connection refused"), ErrUnavailable},
		{rpcerr.New(codes.FailedPrecondition, "STALE_EPOCH", "fenced"), ErrWriteForbidden},
		{rpcerr.New(codes.InvalidArgument, "INVALID_RECEIPT_HANDLE", "bad"), ErrReceiptInvalid},
		{rpcerr.New(codes.InvalidArgument, "INVALID_NAME", "bad"), ErrInvalidArgument},
		{rpcerr.New(codes.Internal, "INTERNAL", "bug"), ErrServer},
		{context.DeadlineExceeded, ErrTimeout},
		{context.Canceled, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.want.Error(), func(t *testing.T) {
			err := wrapErr("send orders", tc.err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v is not %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "send orders: ") {
				t.Fatalf("message %q does not name the operation", err)
			}
		})
	}
}

func TestWrapErrKeepsMessageAndStatus(t *testing.T) {
	orig := rpcerr.New(codes.NotFound, "TOPIC_NOT_FOUND", `topic "x" does not exist: create it with: duomq topic create x --queues N`)
	err := wrapErr("send x", orig)
	if !strings.Contains(err.Error(), "duomq topic create x") {
		t.Fatalf("server message lost: %q", err)
	}
	if status.Code(err) != codes.NotFound || rpcerr.Reason(err) != "TOPIC_NOT_FOUND" {
		t.Fatalf("status %v reason %q", status.Code(err), rpcerr.Reason(err))
	}
	var e *Error
	if !errors.As(err, &e) || e.Reason != "TOPIC_NOT_FOUND" || e.Code != codes.NotFound {
		t.Fatalf("errors.As: %+v", e)
	}
	if wrapErr("other", err) != err {
		t.Fatal("wrapped twice")
	}
}
