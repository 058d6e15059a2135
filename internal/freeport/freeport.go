// Package freeport picks loopback TCP ports for components that must know
// their ports before they start (etcd peers are known by URL).
//
// Ports are taken below the kernel's ephemeral range: a port from there
// is never handed out by the kernel to an outgoing connection or to a
// listener on port 0, so it cannot be taken between the moment it is
// picked and the moment the component binds it, except by another process
// picking the same way (a random starting point makes that unlikely).
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// span is how many ports below the ephemeral range are used.
const span = 10000

// Take returns n distinct free ports on 127.0.0.1.
func Take(n int) ([]int, error) {
	lo := ephemeralLow() - span
	if lo < 1024 {
		lo = 1024
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	start := rand.IntN(span)
	for i := 0; i < span && len(out) < n; i++ {
		p := lo + (start+i)%span
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, l)
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("freeport: only %d of %d ports free in [%d, %d)", len(out), n, lo, lo+span)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				return v
			}
		}
	}
	return 32768
}
