// Package offsets keeps consumer offsets per (group, topic, queue) for one
// broker: the next queue offset each consumer group will read.
//
// Commits only change memory and mark the store dirty; Flush (called by the
// broker's checkpoint loop) and Close persist the whole table with
// atomicfile.WriteFile, so the file on disk is always one complete
// snapshot. A consumer that restarts after a crash re-reads at most what was
// committed since the last Flush, never skips a message.
//
// # Commit history
//
// For message traces the store also remembers, in memory only, when each
// queue's committed offset moved (PassedAt): a few dozen marks per queue,
// precise for recent moves and coarser with age. A group's first commit is
// where it starts reading, not what it consumed, so the history begins
// there; nothing before the store was opened is known.
//
// # On-disk format
//
// One JSON document:
//
//	{"version": 1, "offsets": [{"group": "g", "topic": "t", "queue": 0, "offset": 42}, ...]}
//
// Entries are sorted by group, topic and queue so that equal tables give
// equal files. A file that does not parse, has another version, unknown
// fields or a duplicate key is reported as ErrCorrupt: the store never
// silently starts empty, which would rewind (or, after a reset, skip) every
// consumer. Values are not checked beyond that: whatever Commit accepted
// reads back unchanged, and validating names and offsets is the caller's
// job.
//
// # Concurrency
//
// All methods are safe for concurrent use. Flushes are serialised so that
// an older snapshot never overwrites a newer one.
//
// # Usage
//
//	s, err := offsets.Open(filepath.Join(dataDir, "offsets.json"))
//	s.Commit("billing", "orders", 3, 1042)
//	next, ok := s.Get("billing", "orders", 3)
//	err = s.Flush()
package offsets
