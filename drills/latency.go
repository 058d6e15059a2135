package drills

import (
	"slices"
	"sort"
	"time"
)

// Phase is the send performance of one class during one span of the
// drill: a fault's window, or "baseline" (the time outside every fault).
// A send belongs to the span its attempt started in; its latency runs from
// that start to the answer (client retries included).
type Phase struct {
	Phase string `json:"phase"`
	Class Class  `json:"class"`
	// Seconds is the span's length (the baseline's: the drill's length
	// less the faults').
	Seconds float64 `json:"seconds"`
	Acked   int     `json:"acked"`
	// Throughput is acked sends per second of the span.
	Throughput float64 `json:"throughput_per_second"`
	// Latency of acked sends, in milliseconds.
	P50ms float64 `json:"latency_p50_ms"`
	P99ms float64 `json:"latency_p99_ms"`
	MaxMs float64 `json:"latency_max_ms"`
}

// baselinePhase names the time outside every fault window.
const baselinePhase = "baseline"

// Phases computes, per span and class, throughput and the latency of
// acked sends. Sends without a start time are left out.
func Phases(sends []Send, windows []Window, start, end time.Time) []Phase {
	type key struct {
		phase string
		class Class
	}
	lat := map[key][]time.Duration{}
	var order []key
	for _, s := range sends {
		if !s.Acked || s.Sent.IsZero() {
			continue
		}
		ph := baselinePhase
		for _, w := range windows {
			if !s.Sent.Before(w.Start) && s.Sent.Before(w.End) {
				ph = w.Name
				break
			}
		}
		k := key{ph, s.Class}
		if _, ok := lat[k]; !ok {
			order = append(order, k)
		}
		lat[k] = append(lat[k], s.At.Sub(s.Sent))
	}
	span := map[string]time.Duration{baselinePhase: end.Sub(start)}
	for _, w := range windows {
		// Only the part of a window while the load ran counts.
		d := max(minTime(w.End, end).Sub(maxTime(w.Start, start)), 0)
		span[w.Name] += d
		span[baselinePhase] -= d
	}
	sort.SliceStable(order, func(i, j int) bool {
		if (order[i].phase == baselinePhase) != (order[j].phase == baselinePhase) {
			return order[i].phase == baselinePhase
		}
		return false
	})
	var out []Phase
	for _, k := range order {
		ds := lat[k]
		slices.Sort(ds)
		p := Phase{Phase: k.phase, Class: k.class, Acked: len(ds), Seconds: max(span[k.phase], 0).Seconds(),
			P50ms: ms(quantile(ds, 0.50)), P99ms: ms(quantile(ds, 0.99)), MaxMs: ms(ds[len(ds)-1])}
		if p.Seconds > 0 {
			p.Throughput = float64(p.Acked) / p.Seconds
		}
		out = append(out, p)
	}
	return out
}

// quantile of sorted ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
