// Package deploytest checks the deployment material under deploy/: the
// Prometheus scrape configuration and alert rules (with promtool) and the
// Grafana dashboard, and that every duomq metric they use is defined in the
// Go sources. It has no code of its own; see its tests.
package deploytest
