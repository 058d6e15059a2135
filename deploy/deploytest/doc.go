// Package deploytest checks the deployment material under deploy/: the
// Prometheus scrape configuration and alert rules (with promtool), every
// Grafana dashboard (its variables and panels, and its queries parsed by
// promtool), that docs/operations.md lists every alert, and that every
// duomq metric the rules and dashboards use is defined in the Go sources.
// It has no code of its own; see its tests.
package deploytest
