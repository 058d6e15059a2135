// Package drills runs scripted disaster-recovery drills against a
// topology and scores them from the workload's own records: RTO, lost,
// duplicated and reordered messages.
//
// The checker (Check) is independent of the system's own metrics: it
// takes the workload's record of every send attempt (id, class, key and
// per-key sequence, ack or error, time, acking DC) and of every delivery
// (id, group, consumer, DC, time), and the drill's fault windows, and
// computes per topic class the sends attempted and acked, deliveries,
// acked messages never delivered (lost), deliveries beyond the first per
// group (duplicates), per-key order violations per group (reordered), and
// per fault the longest time without an ack and without a delivery.
//
// Run executes a Scenario (YAML, docs/drills.md): it starts the local
// topology or uses a cluster.json, creates the workload's topics and
// groups, runs producers and consumers through the DCs' proxies, runs the
// steps in order (controller API for traffic moves, the dev API for site
// restarts and partitions, SIGKILL for site kills), undoes every fault it
// injected, drains the consumers and scores the records.
//
// Not built yet: drill history in the metadata, the HTML report, the
// JSON Schema of the format, WAN latency and component faults, and the
// shipped scenarios beyond the first.
package drills
