// Package replicator copies the queues of replicated topics from the DC
// that leads them to its own DC, at the same queue offsets, so consumer
// offsets need no translation after a failover; and it copies consumer
// offsets of those queues the same way. One replicator runs in every DC
// (`duomq replicator --config FILE`, or inside a `duomq dev` site).
//
// How a queue is followed. An ordered topic with Queues=N has logical
// queue q on broker sorted(registered brokers of the DC by name)[q mod n]
// (meta.Place), queue id q, in every DC. A broker stays registered while
// it is down, so its queues do not move: a queue whose broker is down in
// either DC is not copied until it returns (reading a shorter queue on
// another broker would look like a divergence and truncate the copy). For each queue whose leading DC (meta.Ordered.Primary) is
// another DC, a worker runs a long-polling loop:
//
//	state  := local.ReplicaState(topic)           // next offset, last epoch
//	fetch  := leader.ReplicaFetch(next, lastEpoch) // acknowledges < next
//	if fetch.diverging: local.ReplicaTruncate(fetch.truncate_to, fetch.epoch)
//	else:               local.ReplicaAppend(next, fetch.messages)
//
// Invariants:
//   - Same offsets: a record is appended here only at the offset it has
//     on the leader (the broker refuses any other), so follower and leader
//     queues are equal prefixes of each other.
//   - The fetch offset acknowledges only records this DC holds durably
//     (ReplicaAppend returns after the fsync), which is what a sync send
//     on the leader waits for.
//   - No loop: a worker only copies from the topic's leading DC to its own
//     DC, and the leader's brokers refuse replica appends, so nothing is
//     ever copied back to where it came from. Records keep their born DC.
//   - Divergence is resolved by the leader's answer before anything is
//     appended: a returning old leader cuts (and quarantines) its
//     unreplicated tail first.
//   - Consumer offsets of a followed queue are copied from the leader's
//     broker at least every offset-sync-interval; the broker raises them
//     only (never backwards) and leaves a queue its own consumers use.
//
// Unordered topics with replication: each DC writes its own queues
// (Queues logical queues per DC, queue q on the DC's broker q mod n,
// as for ordered topics), and every other DC keeps a mirror,
// %MIRROR%<dc>%<topic>, at the same offsets. Consumer offsets go from the
// source to the mirror and back (raised only, never onto a queue consumed
// where they land), so that while a DC is down the other DC's consumers
// read its unconsumed messages from the mirror, and when it returns its
// own consumers do not read them again.
//
// Not yet: replica sets inside one DC.
package replicator
