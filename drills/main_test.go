package drills

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. The ignored ones belong to etcd's
// peer transport (see internal/etcdtest) and to the HTTP test servers'
// keep-alive connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
	)
}
