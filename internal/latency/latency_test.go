package latency

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(100-i) * time.Microsecond
	}
	if l := Summarize(d); l.N != 100 || l.P50us != 50 || l.P99us != 99 {
		t.Fatalf("%+v", l)
	}
	if l := Summarize(nil); l != (Summary{}) {
		t.Fatalf("empty: %+v", l)
	}
}
