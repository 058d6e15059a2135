// Package consumequeue owns the per-queue index of a topic: for one
// (topic, queue id) it maps each queue offset to the commitlog record that
// holds the message, so that reading by queue offset costs one array access.
//
// # On-disk format
//
// A queue lives in its own directory as a run of fixed-size files. Each file
// holds Options.EntriesPerFile slots of EntrySize (20) bytes, little endian:
//
//	i64 commitlog position | i32 record size | i64 tag hash
//
// A file is named by the queue offset of its first slot, as 20 zero-padded
// decimal digits, so slot i of file B holds offset B+i. Files are created
// at full size (sparse) under a temporary name and renamed into place, so a
// file of any other size is corruption, never a half-created file. An
// all-zero slot is empty: a real entry always has Size > 0.
//
// # Invariants
//
//   - Files are contiguous: the next file starts where the previous one ends.
//     Only the first file may start at an offset that is not a multiple of
//     EntriesPerFile (a queue Reset to start mid-stream).
//   - Entries are in strictly increasing Pos order; Append enforces it, and
//     TruncateFromPos, SetMinLogPos and Search rely on it (binary search).
//   - MinOffset <= MaxOffset. Every offset in [first file start, MaxOffset)
//     holds a valid entry; [MinOffset, MaxOffset) is what readers may see.
//   - Retention never deletes the last file, so MaxOffset is rediscovered
//     after a restart. Reset creates an empty file named by its start
//     offset for the same reason; no separate metadata file is needed.
//
// # Recovery
//
// Open rediscovers MaxOffset by scanning the last file (and the one before
// it, when the last is empty) forward to the first slot that is empty or
// invalid (Size <= 0, Pos < 0 or Pos not increasing), and zeroes whatever
// follows. This is RocketMQ's consume queue recovery: a power loss can
// persist mapped pages in any order, leaving a hole or a torn slot (slots
// straddle page boundaries) before later entries, and keeping those later
// entries would expose a hole to readers.
//
// Only data written since the last Flush can be damaged, and a torn slot
// is not always detectable (a 20-byte slot has no checksum: a Pos with some
// bytes lost can still look ordered). The owner therefore recovers from a
// checkpoint taken after Flush, in two steps:
//
//  1. TruncateFromPos(checkpoint position). Its binary search counts an
//     invalid slot as "at or after the position", so it never cuts into
//     the flushed prefix and removes what it can see of the damaged tail.
//  2. Re-dispatch every record from the checkpoint on. For a record whose
//     queue offset is below MaxOffset, compare Get(offset) with the entry
//     it would write; on any difference or error, TruncateTo(offset) and
//     Append. This repairs whatever step 1 could not see.
//
// MinOffset is not persisted: after Open it is the start of the first file,
// and the owner re-applies retention with SetMinLogPos.
//
// # Memory mapping
//
// Files are memory mapped (MAP_SHARED) rather than read with pread, because
// the hot paths are tiny: a Get copies 20 bytes and an Append writes 20
// bytes, where a system call each would cost more than the work. Mapped
// files cost virtual address space only; pages are loaded on demand and
// written back by the kernel, and Flush forces them out with msync.
// Mappings are replaced only under an exclusive lock that readers share
// while they copy, so no reader ever touches an unmapped region.
//
// # Concurrency
//
// One writer (Append, the Truncate methods, Reset, SetMinLogPos) and any
// number of concurrent readers (Get, Range, Search, MinOffset, MaxOffset)
// and one Flush caller. Mutating methods are also serialised internally.
// The writer fills a slot before publishing the new MaxOffset with an atomic
// store, so a reader that sees an offset below MaxOffset sees its entry.
//
// Lock order: wmu, then flushMu, then mu.
//
// # Usage
//
//	q, err := consumequeue.Open(dir, consumequeue.DefaultOptions())
//	err = q.Append(q.MaxOffset(), consumequeue.Entry{Pos: pos, Size: n, TagHash: consumequeue.TagHash(tag)})
//	entries, err := q.Range(offset, 32, nil)
//
// The package needs mmap and therefore builds on Unix systems only.
package consumequeue
