// Package commitlog is the broker's append-only storage log: every message a
// broker stores is appended here first, and the consume queues and the
// index only hold positions into it.
//
// # What it owns
//
// The segment files of one directory, their format, recovery after a
// crash, durability (fsync, group commit), and retention. It does not
// know about topics, queues or epochs beyond carrying them in records: the
// broker assigns queue offsets, encodes messages with AppendRecord and keeps
// the positions Append returns.
//
// # Positions and segments
//
// A position is a byte offset in one global, contiguous space. The log is
// split into segment files named by their base position as 20 zero-padded
// digits (00000000000000000000, 00000000001073741824, ...). A segment ends
// exactly where the next begins. A record never spans segments: when the
// next record would not fit in SegmentSize, the segment is closed with an
// end-of-segment marker and the record starts the next segment, right after
// the marker. Files are written with pwrite and read with pread, never
// mapped and never preallocated.
//
// # Record format
//
// Every frame starts with a 9-byte header, all integers little endian:
//
//	u32 length    of the whole frame, header included
//	u32 crc       CRC32C (Castagnoli) of every byte after this field
//	u8  version   1 for a message record, 0xFF for an end-of-segment marker
//
// A message record's payload follows in this fixed order:
//
//	u32 flags | u32 queue id | i64 queue offset | u64 epoch
//	i64 born time | i64 store time                          (unix ns)
//	topic | born dc | id | tag | sharding key               (u32 len + bytes each)
//	u32 key count, then each key                            (u32 len + bytes)
//	u32 property count, then name, value pairs              (names strictly ascending)
//	body                                                    (u32 len + bytes)
//
// Nothing may follow the body. The encoding is canonical: a record that
// decodes re-encodes to the same bytes. An end-of-segment marker is the
// header followed by an i64, the newest store time in its segment, which is
// what age retention reads.
//
// # Invariants
//
//   - Positions only grow, except by an explicit Truncate; an append
//     never moves a record that was already appended.
//   - Under FlushSync, WaitDurable(pos) returns nil only once an fsync
//     covered every byte below pos, and the directory entry of every
//     segment holding them; the broker acks after it.
//   - A record with a bad checksum or layout is never returned: reads
//     return an error wrapping ErrCorruption, count it, log it and call
//     Hooks.OnCorruption.
//   - On Open, the log ends at its last valid record: a torn or corrupt
//     tail is truncated and segment files beyond it are deleted, so a crash
//     mid-write never leaves garbage that a later append would follow.
//   - After a failed write or fsync the log refuses appends (ErrLogFailed);
//     it never retries an fsync and then claims durability.
//
// # Use
//
//	log, err := commitlog.Open(commitlog.Options{Dir: dir, FlushMode: commitlog.FlushSync})
//	rec := commitlog.AppendRecord(nil, &msg)           // outside the broker's lock
//	res, err := log.Append([][]byte{rec})              // under it: fast, no fsync
//	err = log.WaitDurable(ctx, res.End)                // after releasing it; then ack
//	next, err := log.Scan(from, log.DurablePos(), 1<<20, dispatch)
//	m, err := log.ReadMessage(pos, size)               // pos, size from a consume queue
//
// One goroutine per Log fsyncs. In sync mode it starts a round as soon as
// bytes are written; appends that arrive during an fsync are all covered by
// the next one (group commit), so the fsync rate stays bounded however many
// producers wait. In async mode it fsyncs every FlushInterval.
package commitlog
