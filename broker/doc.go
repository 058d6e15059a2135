// Package broker is one broker's storage engine and its operations: append
// (send, idempotent and fenced), pull with long-polling, message-level
// consumption (pop, ack, invisibility, retry and dead-letter topics),
// delayed delivery, consumer offsets, look-ups by id, key and time and
// message traces (trace.go), topics and permissions, retention and crash
// recovery.
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
//   - A fenced topic (epoch > 0) accepts only sends stamped with its epoch
//     or a newer one, checked under appendMu (epoch.go).
//   - A send of a sync-replicated topic is acked only once the follower
//     DCs of its in-sync set hold it; while one is out of the set, sends
//     fail or go on without it as the topic's sync policy says (replica.go,
//     replica_isr.go).
//   - An idempotent send never stores an id twice in one topic, across
//     concurrent senders and restarts (idempotent.go).
//   - A popped message is handed out by one pop at a time; a group's
//     committed offset only moves over settled messages (pop.go).
//   - A delayed message is delivered once, not before its due time, and
//     survives restarts (schedule.go).
//
// # Consumption and delays
//
// Pop/Ack/ChangeInvisibleDuration keep consumption state in the broker so
// that proxies stay stateless (pop.go states the invariants). Expired pops
// of unordered groups are copied to %RETRY%<group> after a backoff and, at
// the last attempt, to %DLQ%<group>; the broker creates those topics on
// first need. Delays (property __DELIVER_AT, and retry backoffs) go through
// the internal topic %SCHEDULE%, one queue per delay level, whose progress
// is the offsets of the internal group %SCHEDULER% (schedule.go).
//
// # Use
//
//	b, err := broker.New(cfg, logger, registry)
//	b.Start(ctx)
//	defer b.Close()
//	res, err := b.Send(ctx, broker.SendRequest{Topic: "orders", QueueID: -1, Messages: msgs, Idempotent: true})
//	popped, err := b.Pop(ctx, broker.PopRequest{Group: "billing", Topic: "orders", QueueID: -1, Wait: time.Second})
//	err = b.Ack("billing", "orders", popped[0].ReceiptHandle)
//
// The gRPC service in package broker/server exposes these operations.
package broker
