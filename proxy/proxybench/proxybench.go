// Package proxybench measures produce, consume and end-to-end traffic
// through a DC's proxy and, in the same run and at the same offered load,
// straight to one of that DC's brokers: the difference is what the proxy
// adds. `duomq bench produce|consume|e2e` prints a Result as JSON against a
// running cluster (cluster.json, e.g. from `duomq dev`).
//
// Method: the maximum sustainable rate is measured closed-loop (Workers
// concurrent callers, each sending as soon as its previous call returned);
// latency is then measured open-loop at LoadFraction (0.5) of the proxy's
// maximum, the load DESIGN.md's p99 target is stated at, for both paths.
package proxybench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duomq/duomq/internal/latency"
)

// Options size a run.
type Options struct {
	MessageSize  int
	Duration     time.Duration // of each measurement
	Workers      int           // concurrent callers
	LoadFraction float64       // latency is measured at this fraction of the max rate
}

// DefaultOptions: 1 KiB, 5 s per measurement, 16 callers, at half load.
func DefaultOptions() Options {
	return Options{MessageSize: 1024, Duration: 5 * time.Second, Workers: 16, LoadFraction: 0.5}
}

// Latency is a distribution in microseconds.
type Latency = latency.Summary

// Path is one measured path (via the proxy, or straight to a broker).
type Path struct {
	MaxMsgPerSec float64 `json:"max_msg_per_sec"`
	// AtLoad is the latency at the offered load OfferedMsgPerSec.
	OfferedMsgPerSec float64 `json:"offered_msg_per_sec"`
	AtLoad           Latency `json:"latency_at_load"`
	Errors           int64   `json:"errors"`
}

// Result of one benchmark.
type Result struct {
	Benchmark string `json:"benchmark"`
	Machine   struct {
		CPUs int    `json:"cpus"`
		Go   string `json:"go"`
	} `json:"machine"`
	DC          string  `json:"dc"`
	MessageSize int     `json:"message_size"`
	Workers     int     `json:"workers"`
	Proxy       Path    `json:"via_proxy"`
	Broker      Path    `json:"direct_to_broker"`
	OverheadP50 float64 `json:"proxy_overhead_p50_us"`
	OverheadP99 float64 `json:"proxy_overhead_p99_us"`
	// E2E is the store-to-delivery latency (e2e benchmark only).
	E2E     *Latency `json:"end_to_end,omitempty"`
	Targets struct {
		OverheadP50us float64 `json:"proxy_overhead_p50_us_max"`
		P99us         float64 `json:"p99_us_max_at_load"`
	} `json:"targets"`
}

func newResult(name, dc string, o Options) Result {
	r := Result{Benchmark: name, DC: dc, MessageSize: o.MessageSize, Workers: o.Workers}
	r.Machine.CPUs, r.Machine.Go = runtime.NumCPU(), runtime.Version()
	r.Targets.OverheadP50us, r.Targets.P99us = 500, 2000
	return r
}

func (r *Result) finish() {
	r.OverheadP50 = r.Proxy.AtLoad.P50us - r.Broker.AtLoad.P50us
	r.OverheadP99 = r.Proxy.AtLoad.P99us - r.Broker.AtLoad.P99us
}

// op is one call of a path.
type op func(ctx context.Context) error

// closedLoop runs op from workers callers for d and returns calls/s.
func closedLoop(ctx context.Context, workers int, d time.Duration, f op) (float64, int64) {
	var n, errs atomic.Int64
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				if err := f(ctx); err != nil {
					errs.Add(1)
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), errs.Load()
}

// openLoop offers rate calls/s for d, spread over workers callers, each
// call timed from its scheduled start (so queueing delay counts, as it
// would for a real producer).
func openLoop(ctx context.Context, workers int, rate float64, d time.Duration, f op) (Latency, int64) {
	if rate <= 0 {
		return Latency{}, 0
	}
	interval := time.Duration(float64(time.Second) * float64(workers) / rate)
	var mu sync.Mutex
	var lats []time.Duration
	var errs atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start.Add(interval * time.Duration(w) / time.Duration(workers))
			var local []time.Duration
			for next.Before(start.Add(d)) && ctx.Err() == nil {
				time.Sleep(time.Until(next))
				if err := f(ctx); err != nil {
					errs.Add(1)
				} else {
					local = append(local, time.Since(next))
				}
				next = next.Add(interval)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(lats), errs.Load()
}

func summarize(d []time.Duration) Latency { return latency.Summarize(d) }

// measurePair measures both paths: max rates closed-loop, then latency
// open-loop at the same offered load (a fraction of the proxy's max).
func measurePair(ctx context.Context, o Options, viaProxy, direct op) (Path, Path, error) {
	var p, b Path
	p.MaxMsgPerSec, p.Errors = closedLoop(ctx, o.Workers, o.Duration, viaProxy)
	b.MaxMsgPerSec, b.Errors = closedLoop(ctx, o.Workers, o.Duration, direct)
	if p.MaxMsgPerSec == 0 {
		return p, b, fmt.Errorf("no call through the proxy succeeded (%d errors)", p.Errors)
	}
	load := p.MaxMsgPerSec * o.LoadFraction
	p.OfferedMsgPerSec, b.OfferedMsgPerSec = load, load
	var e int64
	p.AtLoad, e = openLoop(ctx, o.Workers, load, o.Duration, viaProxy)
	p.Errors += e
	b.AtLoad, e = openLoop(ctx, o.Workers, load, o.Duration, direct)
	b.Errors += e
	return p, b, nil
}
