// Package daemon runs duomq's server components as network services: each
// RunX binds its gRPC and /metrics listeners, starts the component, reports
// the bound addresses through a callback, and serves until its context
// ends. `duomq broker|nameserver|proxy`, the sites of `duomq dev` and
// internal/testcluster all use it, so a component runs the same code in a
// container, a process or a test.
package daemon
