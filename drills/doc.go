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
// Status: the checker is built and tested; the scenario format, the
// runner and its reports are planned.
package drills
