package seqname

import "testing"

func TestRoundTripAndRejects(t *testing.T) {
	for _, n := range []int64{0, 1, 1 << 30, 1<<63 - 1} {
		got, ok := Parse(Format(n))
		if !ok || got != n {
			t.Fatalf("Parse(Format(%d)) = %d, %v", n, got, ok)
		}
	}
	for _, bad := range []string{"", "0", "0000000000000000000a", "00000000000000000000.tmp", "99999999999999999999"} {
		if _, ok := Parse(bad); ok {
			t.Fatalf("Parse(%q) accepted", bad)
		}
	}
	if Format(7) >= Format(10) {
		t.Fatal("names do not sort numerically")
	}
}
