package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/duomq/duomq/internal/rpcerr"
)

func throttled(delay time.Duration) error {
	st := status.New(codes.ResourceExhausted, "topic over its rate")
	st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: "THROTTLED", Domain: rpcerr.Domain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	return st.Err()
}

func TestRetryDecision(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		retry bool
		least time.Duration
	}{
		{"unavailable", rpcerr.New(codes.Unavailable, "UNAVAILABLE", "no broker"), true, 0},
		{"unavailable without detail", status.Error(codes.Unavailable, "connection refused"), true, 0},
		{"throttled honors RetryInfo", throttled(700 * time.Millisecond), true, 700 * time.Millisecond},
		{"attempt timeout", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true, 0},
		{"grpc size limit", status.Error(codes.ResourceExhausted, "grpc: received message larger than max (9 vs. 4)"), false, 0},
		{"invalid argument", rpcerr.New(codes.InvalidArgument, "INVALID_NAME", "bad"), false, 0},
		{"not found", rpcerr.New(codes.NotFound, "TOPIC_NOT_FOUND", "no topic"), false, 0},
		{"permission denied", rpcerr.New(codes.PermissionDenied, "PERMISSION_DENIED", "no"), false, 0},
		{"failed precondition", rpcerr.New(codes.FailedPrecondition, "STALE_EPOCH", "fenced"), false, 0},
		{"unauthenticated", rpcerr.New(codes.Unauthenticated, "BAD_SIGNATURE", "no"), false, 0},
		{"internal", rpcerr.New(codes.Internal, "INTERNAL", "bug"), false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, least := retryDecision(context.Background(), wrapErr("op", tc.err))
			if ok != tc.retry || least != tc.least {
				t.Fatalf("retry %v after %v, want %v after %v", ok, least, tc.retry, tc.least)
			}
		})
	}
}

func TestRetryDecisionStopsWhenCallerIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ok, _ := retryDecision(ctx, wrapErr("op", status.Error(codes.Unavailable, "x"))); ok {
		t.Fatal("retried after the caller gave up")
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Multiplier: 2}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 9: time.Second} {
		for range 50 {
			got := p.backoff(n)
			if got > want || got < want*8/10 {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, got, want*8/10, want)
			}
		}
	}
}

func fastPolicy(attempts int) RetryPolicy {
	return RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Multiplier: 2}
}

func TestRetryDo(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "down")
	invalid := rpcerr.New(codes.InvalidArgument, "INVALID_ARGUMENT", "bad")
	cases := []struct {
		name     string
		errs     []error // per attempt; nil: success
		attempts int
		wantN    int
		wantErr  error
	}{
		{"success", []error{nil}, 4, 1, nil},
		{"two unavailable then success", []error{unavailable, unavailable, nil}, 4, 3, nil},
		{"never retries invalid argument", []error{invalid, nil}, 4, 1, ErrInvalidArgument},
		{"gives up after max attempts", []error{unavailable, unavailable, unavailable, nil}, 3, 3, ErrUnavailable},
		{"throttled then success", []error{throttled(time.Millisecond), nil}, 4, 2, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := fastPolicy(tc.attempts).do(context.Background(), "op", time.Second, func(context.Context) error {
				n++
				return tc.errs[n-1]
			})
			if n != tc.wantN {
				t.Fatalf("%d attempts, want %d", n, tc.wantN)
			}
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestRetryDoRetriesAnAttemptTimeout(t *testing.T) {
	n := 0
	err := fastPolicy(3).do(context.Background(), "op", 20*time.Millisecond, func(ctx context.Context) error {
		n++
		if n == 1 {
			<-ctx.Done()
			return status.FromContextError(ctx.Err()).Err()
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("err %v after %d attempts; want a retry after the attempt's timeout", err, n)
	}
}

func TestRetryDoHonorsRetryInfo(t *testing.T) {
	n := 0
	start := time.Now()
	err := fastPolicy(2).do(context.Background(), "op", time.Second, func(context.Context) error {
		n++
		if n == 1 {
			return throttled(150 * time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("retried after %v, before the server's 150ms RetryInfo delay", el)
	}
}
