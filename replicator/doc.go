// Package replicator copies queues across data centers at the same queue
// offsets (so consumer offsets need no translation after a failover) and
// syncs topics, groups and consumer offsets between DCs.
//
// Status: planned; this package holds no code yet.
package replicator
