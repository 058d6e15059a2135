package proxy

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// idleLimiter is how long an unused client limiter is kept.
const idleLimiter = 10 * time.Minute

// throttler holds token buckets per topic and per client. A refused call
// takes no tokens.
type throttler struct {
	cfg ThrottleConfig
	now func() time.Time

	mu      sync.Mutex
	topics  map[string]*rate.Limiter
	clients map[string]*clientLimiter
}

type clientLimiter struct {
	lim  *rate.Limiter
	used time.Time
}

func newThrottler(cfg ThrottleConfig, now func() time.Time) *throttler {
	return &throttler{cfg: cfg, now: now, topics: map[string]*rate.Limiter{}, clients: map[string]*clientLimiter{}}
}

func newLimiter(r Rate) *rate.Limiter {
	burst := r.Burst
	if burst <= 0 {
		burst = max(int(math.Ceil(r.Rate)), 1)
	}
	return rate.NewLimiter(rate.Limit(r.Rate), burst)
}

// topic takes n tokens of topic's bucket, or returns a ThrottledError.
func (t *throttler) topic(name string, n int) error {
	r, ok := t.cfg.Topics[name]
	if !ok {
		r = t.cfg.Topic
	}
	if !r.enabled() {
		return nil
	}
	t.mu.Lock()
	lim, ok := t.topics[name]
	if !ok {
		lim = newLimiter(r)
		t.topics[name] = lim
	}
	t.mu.Unlock()
	return take(lim, t.now(), n, fmt.Sprintf("topic %q (%g messages/s)", name, r.Rate))
}

// client takes one token of the caller's bucket.
func (t *throttler) client(key string) error {
	if !t.cfg.Client.enabled() {
		return nil
	}
	now := t.now()
	t.mu.Lock()
	cl, ok := t.clients[key]
	if !ok {
		cl = &clientLimiter{lim: newLimiter(t.cfg.Client)}
		t.clients[key] = cl
	}
	cl.used = now
	t.mu.Unlock()
	return take(cl.lim, now, 1, fmt.Sprintf("client %q (%g calls/s)", key, t.cfg.Client.Rate))
}

// sweep forgets client limiters unused for a while.
func (t *throttler) sweep() {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, cl := range t.clients {
		if now.Sub(cl.used) > idleLimiter {
			delete(t.clients, k)
		}
	}
}

// take reserves n tokens if they are there now; otherwise it gives them
// back and says how long until they would be.
func take(lim *rate.Limiter, now time.Time, n int, what string) error {
	res := lim.ReserveN(now, n)
	if !res.OK() {
		return &ThrottledError{What: fmt.Sprintf("%s: a batch of %d is over the burst of %d", what, n, lim.Burst()), RetryAfter: time.Second}
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return &ThrottledError{What: what, RetryAfter: d}
	}
	return nil
}
