// Package latency summarises measured durations the way every duomq
// benchmark reports them: p50 and p99 in microseconds and the sample count.
package latency

import (
	"slices"
	"time"
)

// Summary is a distribution in microseconds.
type Summary struct {
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
	N     int     `json:"n"`
}

// Summarize sorts d in place and returns its percentiles (nearest rank
// below); an empty d gives the zero Summary.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	slices.Sort(d)
	q := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	return Summary{P50us: q(0.50), P99us: q(0.99), N: len(d)}
}
