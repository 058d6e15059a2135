package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestTakeDistinctBindableBelowEphemeral(t *testing.T) {
	ports, err := Take(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p >= ephemeralLow() || p < 1024 {
			t.Fatalf("port %d duplicated or out of range", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d not bindable: %v", p, err)
		}
		l.Close()
	}
}

// A port handed out and released (its component not started yet) is not
// handed out again, by this process or another, within ClaimTTL.
func TestTakeSkipsClaimedPorts(t *testing.T) {
	first, err := Take(50)
	if err != nil {
		t.Fatal(err)
	}
	taken := map[int]bool{}
	for _, p := range first {
		taken[p] = true
	}
	for range 20 {
		again, err := Take(50)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range again {
			if taken[p] {
				t.Fatalf("port %d handed out twice within the claim TTL", p)
			}
			taken[p] = true
		}
	}
}
