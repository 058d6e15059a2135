// Package drills runs scripted disaster-recovery drills against a
// topology and scores them from the workload's own records: RTO, lost,
// duplicated and reordered messages.
//
// Status: planned; this package holds no code yet.
package drills
