// Package meta is duomq's global metadata: a typed client (Store) over etcd
// for the schema below, and a watched local copy (Cache) of the routing
// part of it. The etcd cluster itself is three embedded members, one per
// site (package dr/meta/member).
//
// # Keys
//
// Every key is under the prefix /duomq/v1/. Values are JSON objects whose
// first field is "version": 1 (the schema version; a reader refuses other
// versions with ErrCorrupt). Keys under controller/ and drills/ hold JSON
// owned by the controller and the drills (PutJSON/GetJSON).
//
//	| key                                    | value                                                          | written by                      |
//	| -------------------------------------- | -------------------------------------------------------------- | ------------------------------- |
//	| dcs/<dc>                               | name, cidrs, state active|draining|down, updated_by/at         | PutDC, SetDCState               |
//	| topics/<topic>                         | name, ordered, queues, primary, replication, sync_policy,      | CreateTopic, UpdateTopic,       |
//	|                                        | retention_age, max_message_bytes                               | DeleteTopic                     |
//	| groups/<group>                         | name, subscriptions [{topic, tags}], max_retries, mode,        | CreateGroup, UpdateGroup,       |
//	|                                        | ordered                                                        | DeleteGroup                     |
//	| ordered/<topic>                        | topic, primary, epoch: the fencing token of an ordered topic   | CreateTopic (epoch 1),          |
//	|                                        |                                                                | CASOrdered (controller)         |
//	| traffic                                | weights {dc: w}, topic_overrides {topic: {dc: w}}, blocked_dcs | CASTraffic                      |
//	| offsets/<group>/<topic>/<dc>/<queue>   | offset, updated_at                                             | PutOffsets (batched)            |
//	| consumers/<group>/<dc>/<proxy-id>      | proxy, dc; under a lease of the consumer TTL (about 10 s)      | each proxy (package proxy)      |
//	| controller/leader                      | the controller election (etcd concurrency.Election)            | controller                      |
//	| controller/state                       | the failover state machine                                     | PutJSON (controller)            |
//	| drills/<id>                            | drill records and results                                      | PutJSON (drills)                |
//
// # Invariants
//
//   - Every write that changes routing (DCs, topics, groups, ordered,
//     traffic) is one etcd transaction that compares revisions: the value's
//     own ModRevision (or its absence on create) and the existence of
//     everything it refers to. Of two writers that read the same revision,
//     such as two controllers switching over the same topic, exactly one
//     wins and the other gets ErrConflict. No controller can act on a state
//     it did not read.
//   - The epoch of an ordered topic only increases (CASOrdered refuses
//     anything else), and its primary is always an existing DC.
//   - References hold: an ordered topic's primary DC exists when the topic
//     is created; every topic a group subscribes to exists (CreateGroup and
//     UpdateGroup compare it, DeleteTopic refuses a subscribed topic and
//     compares the groups it checked); offsets exist only for existing
//     groups and topics (PutOffsets compares them; deleting a group or topic
//     deletes its offsets).
//   - Bad input writes nothing: everything is validated before the first
//     request, and a reference to a missing topic, group or DC is
//     ErrNotFound with the command that creates it.
//   - Reads and writes require an etcd leader (clientv3.WithRequireLeader):
//     a member cut off from the quorum answers ErrUnavailable at once
//     instead of serving stale data. A call without a deadline gets
//     Options.Timeout.
//
// # Use
//
//	store := meta.New(cli, meta.Options{Logger: log})
//	rev, err := store.CreateTopic(ctx, meta.Topic{Name: "orders", Ordered: true, Queues: 8, Primary: "idc-a"})
//	cache, err := meta.NewCache(ctx, store)
//	defer cache.Close()
//	err = cache.WaitRevision(ctx, rev) // the cache now has the topic
//	t, ok := cache.Topic("orders")
//
// Each Get returns the value and its ModRevision; pass that revision back
// to the matching compare-revision write (UpdateTopic, UpdateGroup,
// CASOrdered, CASTraffic). Every write returns the etcd revision it was
// applied at, for Cache.WaitRevision.
//
// A write in flight when the etcd leader dies waits until its deadline
// before it fails, though a new leader is elected within about two
// election timeouts. Code that must act quickly during a failover (the
// controller) should give each attempt a short deadline (about a second),
// and after ErrUnavailable re-read before retrying: the compare-revision
// then makes the retry safe.
package meta
