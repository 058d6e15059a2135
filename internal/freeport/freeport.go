// Package freeport picks loopback TCP ports for components that must know
// their ports before they start (etcd peers are known by URL).
//
// Ports are taken below the kernel's ephemeral range: a port from there
// is never handed out by the kernel to an outgoing connection or to a
// listener on port 0. Between the moment a port is picked (and released)
// and the moment its component binds it, another process picking the
// same way could get it too; so every port handed out is claimed for
// ClaimTTL in a directory shared by every process of the machine
// (os.TempDir()/duomq-freeport, one file per port, updated under an
// flock), and Take skips claimed ports. Where that directory cannot be
// used, Take still works, without the claims.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClaimTTL is how long a port handed out is not handed out again, by any
// process: longer than any start-up between picking and binding.
const ClaimTTL = 2 * time.Minute

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
	c := openClaims()
	defer c.close()
	out := make([]int, 0, n)
	start := rand.IntN(span)
	for i := 0; i < span && len(out) < n; i++ {
		p := lo + (start+i)%span
		if c.claimed(p) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		held = append(held, l)
		out = append(out, p)
		c.claim(p)
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

// claims is the shared claim directory, locked while Take runs; a nil
// *claims (the directory unusable) claims nothing.
type claims struct {
	dir  string
	lock *os.File
}

func openClaims() *claims {
	dir := filepath.Join(os.TempDir(), "duomq-freeport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil
	}
	return &claims{dir: dir, lock: f}
}

// claimed reports whether p was handed out less than ClaimTTL ago.
func (c *claims) claimed(p int) bool {
	if c == nil {
		return false
	}
	st, err := os.Stat(filepath.Join(c.dir, strconv.Itoa(p)))
	return err == nil && time.Since(st.ModTime()) < ClaimTTL
}

// claim records p as handed out now.
func (c *claims) claim(p int) {
	if c == nil {
		return
	}
	path := filepath.Join(c.dir, strconv.Itoa(p))
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		if f, err := os.Create(path); err == nil {
			f.Close()
		}
	}
}

func (c *claims) close() {
	if c == nil {
		return
	}
	syscall.Flock(int(c.lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	c.lock.Close()
}
