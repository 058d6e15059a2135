// Package leakcheck is the goroutine-leak check of the test packages that
// run etcd members or HTTP servers.
package leakcheck

import (
	"testing"

	"go.uber.org/goleak"
)

// Main runs the package's tests and fails when goroutines outlive them.
// The ignored ones belong to HTTP keep-alive connections: etcd's peer
// transport (when members in one process stop together, connections
// between them can outlive the members: etcd stops its peer servers with
// a bounded wait and does not close those connections) and HTTP test
// servers and clients.
func Main(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
	)
}
