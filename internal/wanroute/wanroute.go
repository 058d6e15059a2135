// Package wanroute sends a process's connections to other sites' brokers
// through the relays that emulate a WAN link in the local topology
// (`duomq dev --wan`): the supervisor relays each cross-site broker
// address through a listener of its own, where it can add latency, and
// tells every site process the mapping. Outside that topology the table
// is empty and Rewrite returns its argument.
//
// Only broker connections (gRPC, through internal/brokerconn and the
// proxy's broker pool) are relayed; etcd's peer and client traffic and
// the nameservers are not.
package wanroute

import "sync/atomic"

var table atomic.Pointer[map[string]string]

// Set replaces the table: connections to an address key go to its value.
func Set(routes map[string]string) {
	m := make(map[string]string, len(routes))
	for k, v := range routes {
		m[k] = v
	}
	table.Store(&m)
}

// Rewrite is the address to dial for addr.
func Rewrite(addr string) string {
	if m := table.Load(); m != nil {
		if via, ok := (*m)[addr]; ok {
			return via
		}
	}
	return addr
}
