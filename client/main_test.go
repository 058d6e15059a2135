package client

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. The ignored ones belong to etcd's
// peer transport in the integration tests' clusters (see
// internal/etcdtest): keep-alive connections between members stopped
// together can outlive them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
	)
}
