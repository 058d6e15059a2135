package client

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
)

// retryDecision says whether a failed attempt may be retried and the least
// wait before the next one (the server's RetryInfo delay).
func retryDecision(parent context.Context, err error) (bool, time.Duration) {
	if parent.Err() != nil {
		return false, 0
	}
	var e *Error
	if !errors.As(err, &e) {
		return false, 0
	}
	switch {
	case e.Code == codes.Unavailable:
		return true, 0
	case e.Code == codes.ResourceExhausted && errors.Is(err, ErrThrottled):
		return true, e.RetryDelay
	case e.Code == codes.DeadlineExceeded:
		// The attempt's own timeout (the caller's deadline has not passed):
		// a send may have been stored, which idempotent ids make harmless.
		return true, 0
	}
	return false, 0
}

// backoff is the wait before attempt n+1 after n failed attempts:
// exponential, capped, with up to 20% jitter taken off.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := float64(p.InitialBackoff) * math.Pow(p.Multiplier, float64(n-1))
	if d > float64(p.MaxBackoff) {
		d = float64(p.MaxBackoff)
	}
	return time.Duration(d * (1 - 0.2*rand.Float64()))
}

// do runs call with a timeout per attempt, retrying what retryDecision
// allows up to MaxAttempts. The returned error is an *Error named by op.
func (p RetryPolicy) do(ctx context.Context, op string, timeout time.Duration, call func(ctx context.Context) error) error {
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := call(actx)
		cancel()
		if err == nil {
			return nil
		}
		err = wrapErr(op, err)
		ok, least := retryDecision(ctx, err)
		if !ok || n >= p.MaxAttempts {
			return err
		}
		if sleepCtx(ctx, max(p.backoff(n), least)) != nil {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
