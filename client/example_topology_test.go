package client_test

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
)

// exampleTB lets the examples start an in-process topology, which the
// cluster helper builds for tests: it keeps cleanups and temporary
// directories and panics on a failure. Only the methods the helper calls
// are implemented.
type exampleTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func (e *exampleTB) Helper()                   {}
func (e *exampleTB) Logf(string, ...any)       {}
func (e *exampleTB) Errorf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (e *exampleTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (e *exampleTB) Name() string              { return "example" }

func (e *exampleTB) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

func (e *exampleTB) TempDir() string {
	d, err := os.MkdirTemp("", "duomq-example-")
	if err != nil {
		panic(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dirs = append(e.dirs, d)
	return d
}

func (e *exampleTB) stop() {
	e.mu.Lock()
	cleanups, dirs := e.cleanups, e.dirs
	e.mu.Unlock()
	for _, f := range slices.Backward(cleanups) {
		f()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}

// startExampleTopology starts two DCs with the topic "orders" (ordered,
// led by idc-a) and the group "billing", and returns idc-a's proxy
// address and a function that stops everything.
func startExampleTopology() (proxy string, stop func()) {
	tb := &exampleTB{}
	cl := testcluster.New(tb, testcluster.Options{})
	cl.CreateTopic(tb, meta.Topic{Name: "orders", Queues: 4, Ordered: true, Primary: testcluster.DCA})
	cl.CreateGroup(tb, meta.Group{Name: "billing", Subscriptions: []meta.Subscription{{Topic: "orders", Tags: "*"}}})
	return cl.Proxy(testcluster.DCA), tb.stop
}
