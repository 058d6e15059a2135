// Package broker is one broker's storage engine and its operations: append
// (send), pull with long-polling, consumer offsets, look-ups by id, key and
// time, topics and permissions, retention and crash recovery.
//
// # Storage
//
// Every topic is appended to one commitlog (package commitlog: segment
// files, records framed with length, CRC32C and version). A dispatcher
// goroutine reads the commitlog as it becomes readable and builds, per
// (topic, queue), a consume queue of fixed-size entries (package
// consumequeue), so reading by queue offset is O(1), and an id/key index
// (package index). Consumer offsets live in package offsets.
//
// # Invariants
//
//   - Queue offsets are assigned under appendMu in commitlog order, so a
//     queue's entries are in increasing commitlog position and contiguous.
//   - Under sync flush a Send returns only after an fsync covers its
//     records, and the dispatcher only dispatches durable bytes: no consumer
//     ever reads a message that a crash could take back.
//   - The checkpoint (checkpoint.json) names a commitlog position whose
//     queue and index entries were flushed before it was written, and which
//     was durable. Recovery truncates the commitlog's torn tail, cuts every
//     consume queue back to the checkpoint and re-dispatches from it.
//   - A record that fails its checksum is never served: reads return an
//     error wrapping ErrCorruption, logged and counted.
//   - Retention deletes whole segments, never the one being written; queue
//     min offsets move past the removed data.
//
// # Use
//
//	b, err := broker.New(cfg, logger, registry)
//	b.Start(ctx)
//	defer b.Close()
//	res, err := b.Send(ctx, broker.SendRequest{Topic: "orders", QueueID: -1, Messages: msgs})
//
// The gRPC service in package broker/server exposes these operations.
package broker
