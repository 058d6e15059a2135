package proxybench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The measuring loops are pure logic over an op; the paths themselves are
// measured against a running cluster by `duomq bench`.

func TestClosedLoopCountsSuccessesAndErrors(t *testing.T) {
	var n atomic.Int64
	rate, errs := closedLoop(context.Background(), 4, 100*time.Millisecond, func(context.Context) error {
		if n.Add(1)%10 == 0 {
			return context.DeadlineExceeded
		}
		time.Sleep(time.Millisecond)
		return nil
	})
	if rate <= 0 || errs == 0 || errs > n.Load()/5 {
		t.Fatalf("rate %v errors %d of %d calls", rate, errs, n.Load())
	}
}

func TestOpenLoopOffersTheRate(t *testing.T) {
	var calls atomic.Int64
	lat, errs := openLoop(context.Background(), 4, 400, 500*time.Millisecond, func(context.Context) error {
		calls.Add(1)
		return nil
	})
	// 400/s for 0.5 s is 200 calls; pacing may lose a call per worker.
	if got := calls.Load(); got < 190 || got > 204 || errs != 0 || lat.N != int(got) {
		t.Fatalf("calls %d (want ~200), errors %d, latencies %d", got, errs, lat.N)
	}
	if lat.P99us > 1_000_000 {
		t.Fatalf("a no-op took %v µs at p99", lat.P99us)
	}
}
