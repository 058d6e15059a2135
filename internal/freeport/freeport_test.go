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
