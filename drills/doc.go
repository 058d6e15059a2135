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
// Run executes a Scenario (YAML, checked against scenario.schema.json;
// docs/drills.md): it starts the local topology or uses a cluster.json,
// creates the workload's topics and groups, runs producers and consumers
// through the DCs' proxies, runs the steps in order (controller API for
// traffic moves and transitions; a Faults driver for kills, pauses,
// partitions and WAN latency: the dev API of `duomq dev`, or Docker for a
// Compose topology), undoes every fault it injected (also on failure or
// interrupt), drains the consumers and scores the records.
//
// Assertions bound the checker's figures (checked when the drill ends) or
// a metric aggregated (sum, min or max) over a site's /metrics endpoints
// (checked when the step runs); a wait can also hold until such a metric
// bound does. The Report is JSON, a terminal summary and a self-contained HTML
// page; History keeps reports in the metadata (drills/<id>).
//
// Invariant: a drill never leaves a fault behind. Every injected fault is
// recorded with its undo before the step returns, and Run undoes what is
// still open on every way out; a fault that cannot be undone is an error
// of the drill (non-zero exit), never a silent leftover.
package drills
