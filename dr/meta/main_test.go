package meta

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. The ignored ones belong to etcd's
// peer transport: when members in one process stop together, keep-alive
// HTTP connections between them can outlive the members (etcd stops its
// peer servers with a bounded wait and does not close those connections).
// This package makes no HTTP connections of its own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
	)
}
