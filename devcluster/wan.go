package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The WAN emulation (Options.WAN): this kernel-independent relay stands in
// for netem. Every connection a site makes to another site's broker goes
// to a relay of the supervisor (internal/wanroute tells the site process
// where), which forwards it to the broker and can delay the bytes in each
// direction. SetWANLatency(a, b, d) adds d to the round trip between
// sites a and b: d/2 on the way out and d/2 on the way back.
//
// A relay delays, it never reorders or drops: bytes read at time t are
// written at t+delay, in order, so a link keeps its throughput and only
// its latency grows. Etcd and nameserver traffic is not relayed.

// wanChunk is bytes read from one side, due on the other at due.
type wanChunk struct {
	b   []byte
	due time.Time
}

// wanLink relays connections from site From to one broker of site To.
type wanLink struct {
	from, to string
	target   string // the broker's address
	addr     string // the relay's listen address
	oneWay   atomic.Int64
	accepted atomic.Int64 // connections relayed, for tests and logs
	l        net.Listener
}

// wan is the set of relays of a topology.
type wan struct {
	links []*wanLink
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// newWAN opens a relay from every site to every broker of each other DC
// (a loopback listener each) and records the routes in the sites' specs.
// Connections are accepted once start runs.
func newWAN(t topology, specs map[string]SiteSpec) (*wan, error) {
	w := &wan{conns: map[net.Conn]struct{}{}}
	for _, from := range Sites {
		routes := map[string]string{}
		for _, to := range []string{SiteA, SiteB} {
			if to == from {
				continue
			}
			for _, bp := range t.Ports[to].Brokers {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					w.close()
					return nil, fmt.Errorf("wan relay: %w", err)
				}
				lk := &wanLink{from: from, to: to, target: t.hostPort(to, bp[0]), addr: l.Addr().String(), l: l}
				routes[lk.target] = lk.addr
				w.links = append(w.links, lk)
			}
		}
		spec := specs[from]
		spec.WANRoutes = routes
		specs[from] = spec
	}
	return w, nil
}

// start serves every relay until close.
func (w *wan) start() {
	for _, lk := range w.links {
		w.wg.Add(1)
		go w.accept(lk)
	}
}

func (w *wan) accept(lk *wanLink) {
	defer w.wg.Done()
	for {
		c, err := lk.l.Accept()
		if err != nil {
			return
		}
		lk.accepted.Add(1)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.relay(lk, c)
		}()
	}
}

// relay joins one client connection to the broker until either side ends.
func (w *wan) relay(lk *wanLink, c net.Conn) {
	up, err := net.DialTimeout("tcp", lk.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !w.track(c, up) {
		return
	}
	defer w.untrack(c, up)
	done := make(chan struct{}, 2)
	go func() { pump(up, c, &lk.oneWay); done <- struct{}{} }()
	go func() { pump(c, up, &lk.oneWay); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
}

func (w *wan) track(cs ...net.Conn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conns == nil { // closed
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		w.conns[c] = struct{}{}
	}
	return true
}

func (w *wan) untrack(cs ...net.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range cs {
		delete(w.conns, c)
	}
}

// pump copies src to dst, each chunk written delay after it was read.
func pump(dst io.Writer, src io.Reader, delay *atomic.Int64) {
	ch := make(chan wanChunk, 256)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				ch <- wanChunk{b: b[:n], due: time.Now().Add(time.Duration(delay.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d) // the chunk's own due time, not a synchronisation
		}
		if _, err := dst.Write(c.b); err != nil {
			for range ch { // let the reader finish once its side closes
			}
			return
		}
	}
}

// set gives the links between sites a and b the added round trip rtt.
func (w *wan) set(a, b string, rtt time.Duration) error {
	if a == b || !slices.Contains(Sites, a) || !slices.Contains(Sites, b) {
		return fmt.Errorf("wan latency: need two different sites of %v, got %q and %q", Sites, a, b)
	}
	if rtt < 0 || rtt > 10*time.Second {
		return fmt.Errorf("wan latency: delay %v out of range [0, 10s]", rtt)
	}
	n := 0
	for _, lk := range w.links {
		if (lk.from == a && lk.to == b) || (lk.from == b && lk.to == a) {
			lk.oneWay.Store(int64(rtt / 2))
			n++
		}
	}
	if n == 0 {
		return errors.New("wan latency: no broker link between " + a + " and " + b)
	}
	return nil
}

// close stops the relays and ends their connections.
func (w *wan) close() {
	for _, lk := range w.links {
		if lk.l != nil {
			lk.l.Close()
		}
	}
	w.mu.Lock()
	for c := range w.conns {
		c.Close()
	}
	w.conns = nil
	w.mu.Unlock()
	w.wg.Wait()
}

// errNoWAN is returned by SetWANLatency on a topology without relays.
var errNoWAN = errors.New("wan latency needs a topology started with WAN relays (duomq dev --wan, or wan: true in a drill's local topology)")

// SetWANLatency adds rtt to the round trip between sites a and b (zero
// removes the delay).
func (s *Supervisor) SetWANLatency(_ context.Context, a, b string, rtt time.Duration) error {
	if s.wan == nil {
		return errNoWAN
	}
	return s.wan.set(a, b, rtt)
}
