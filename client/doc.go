// Package client is the Go SDK of duomq for application teams: producers
// and consumers that talk to the proxy of their own data center, which the
// SDK finds from DUOMQ_IDC, a logicIdc file, or an IP look-up.
//
// Status: planned; this package holds no code yet.
package client
