// Package index finds messages by message id and by key. It is a
// persistent hash index modelled on RocketMQ's IndexFile: a run of
// fixed-size, memory-mapped files, each an open hash table with chaining
// whose chains live inside the file. Memory stays bounded because entries
// are read through the mapping, never loaded into the heap.
//
// # On-disk format
//
// Files are named by the first commitlog position added to them (20
// zero-padded digits); a name is forced above the previous file's name, so
// name order is creation order even when recovery re-adds old positions.
// All integers are little endian.
//
//	header   64 bytes   magic "DQIX" | u32 version (1) | u32 slot count |
//	                    u32 entry capacity | i64 begin store time |
//	                    i64 end store time | i64 begin pos | i64 end pos |
//	                    u32 used slots | u32 entry count | 8 reserved
//	slots    slot count × u32: 1-based index of the newest entry whose key
//	         hash falls in the slot, 0 = none
//	entries  capacity × 24 bytes: u32 key hash | i64 commitlog position |
//	         i64 store time | u32 index of the previous entry in the chain
//
// Begin/end positions and times are the minimum and maximum seen. Each file
// records its own geometry, so Options only shape files created later.
//
// # Invariants
//
//   - A chain only goes back: an entry's previous index is smaller than its
//     own. Lookup stops at any link that breaks this, so even a damaged file
//     cannot make it loop or read outside the mapping.
//   - The header on disk only describes durable data. Flush msyncs the body
//     first and writes the header (from a snapshot taken before) after, so
//     the entry count on disk never covers an entry that a power loss could
//     take back. (The 64-byte header lies in the file's first disk sector,
//     which the disk writes whole.) Open rebuilds the slot table of a file from its first
//     count entries when a slot points past the count (writes after the last
//     Flush), which leaves every chain consistent; the broker re-dispatches
//     everything after its checkpoint, taken after Flush, so nothing that
//     was added is missed.
//   - Lookup may return positions of other keys whose 32-bit hash
//     collides; the caller reads the record and compares. It never misses a
//     position that was added and whose file was not deleted.
//   - The same (key, position) added twice (re-dispatch after a crash)
//     appears once in Lookup results.
//
// # Concurrency
//
// One writer (Add, DeleteBelow) and any number of concurrent Lookups, plus
// one Flush caller. A new entry is written in full before the slot that
// makes it reachable is published with an atomic store; Lookup loads slots
// atomically, so it sees whole entries. Mappings are only removed under an
// exclusive lock that Lookup shares while it walks chains.
//
// Lock order: flushMu, then wmu, then mu.
//
// # Usage
//
//	ix, err := index.Open(dir, index.DefaultOptions())
//	err = ix.Add("i\x00"+msgID, pos, storeTime)
//	positions, err := ix.Lookup("i\x00"+msgID, 32)
//
// The package needs mmap and therefore builds on Unix systems only.
package index
