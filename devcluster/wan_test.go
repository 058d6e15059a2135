package devcluster

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestPumpDelaysInOrder: every chunk through a WAN relay arrives no sooner
// than the link's delay after it was read, in the order sent, and a
// delay set to zero passes bytes on at once. (A lower bound: a loaded
// machine can only make the bytes later.)
func TestPumpDelaysInOrder(t *testing.T) {
	const delay = 80 * time.Millisecond
	srcW, srcR := net.Pipe()
	dstW, dstR := net.Pipe()
	var d atomic.Int64
	d.Store(int64(delay))
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(dstW, srcR, &d)
		dstW.Close()
	}()
	read := func(n int) (string, time.Time) {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(dstR, b); err != nil {
			t.Fatal(err)
		}
		return string(b), time.Now()
	}
	for _, msg := range []string{"first", "second"} {
		sent := time.Now()
		if _, err := srcW.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, at := read(len(msg))
		if got != msg {
			t.Fatalf("read %q, want %q (order)", got, msg)
		}
		if took := at.Sub(sent); took < delay {
			t.Fatalf("%q arrived %v after it was sent, before the link's delay of %v", msg, took, delay)
		}
	}
	d.Store(0)
	if _, err := srcW.Write([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if got, _ := read(3); got != "now" {
		t.Fatalf("read %q after the delay was removed", got)
	}
	srcW.Close()
	<-done
}
