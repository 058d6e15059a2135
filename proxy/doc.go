// Package proxy is the stateless gRPC front door of a data center
// (api/proxypb): application clients send and receive through it, and it
// talks to the brokers of its own DC, and of the other DC when it must.
//
// # Routing
//
// Routing comes from the metadata cache (topics, groups, the ordered
// topics' {primary, epoch}, the traffic policy, the DCs' states and CIDRs)
// and from each DC's nameservers (brokers with address, queue count and
// permission). A topic with Queues=N has N queues on every broker of a DC.
//
//   - Unordered send: to a writable broker of the proxy's own DC, round
//     robin (the broker picks the queue); with traffic weights that give
//     other DCs a share, DCs are taken round robin by weight. An idempotent
//     send picks the broker by hash(id), so a retry reaches the broker that
//     remembers the id. When the own DC is blocked (traffic.blocked_dcs, DC
//     state down or draining), has no writable broker, or every broker's
//     circuit breaker is open or every broker fails, the messages go to the
//     other DC and their results say fallback, with the reason.
//   - Ordered send: logical queue q = fnv32a(sharding_key) mod N, on broker
//     q mod len of the primary DC's brokers sorted by name, queue id q,
//     stamped with the epoch of ordered/<topic>. Never another DC: when the
//     primary cannot take it the error is UNAVAILABLE with the reason. A
//     broker's STALE_EPOCH refusal means the cache is behind: the record is
//     re-read from etcd and the refused messages are sent once more.
//   - Receive pops the topic's queues and the group's %RETRY% topic on the
//     brokers of the proxy's own DC, and of every other DC that has no live
//     consumers of the group (IDC-aware: a DC without consumers has its
//     share read by the other DC's). Ordered topics are popped in their
//     primary DC. A receive first sweeps every (broker, topic) without
//     waiting, then long-polls all at once and returns with the first
//     answer (all of the answers, should several brokers answer in the
//     same instant, rather than hide popped messages until their
//     invisibility ends). A receipt handle names the DC, broker and topic
//     popped, so any proxy can settle it.
//   - TraceMessage asks every broker of every DC (the DCs' alive records
//     and the topic's routes) for a message's records at once and merges
//     them (trace.go, trace_assemble.go); a broker that cannot be asked is
//     listed in the answer, not an error.
//
// # Consumer presence
//
// A group is live at a proxy while one of its consumers heartbeated or
// received there within Config.ConsumerTTL. Each proxy publishes its live
// groups as etcd keys /duomq/v1/consumers/<group>/<dc>/<proxy-id> under
// one lease of that TTL (EtcdPresence), and reads every proxy's keys.
//
// # Protection
//
// Token buckets per topic (messages) and per client (calls) refuse with
// RESOURCE_EXHAUSTED and a google.rpc.RetryInfo delay; a circuit breaker
// per broker (gobreaker) stops calls to a broker that keeps failing and
// probes it after breaker.open-for. A body over its topic's
// max_message_bytes refuses the whole send, naming the limit; nothing is
// sent. Broker calls carry the client's deadline.
//
// Authentication (off by default) checks the signature of package
// proxy/auth and each application's produce and consume permissions.
//
// # Invariants
//
//   - Nothing of a send is stored when any of its messages is refused by
//     validation (size, reserved "__" properties, names, ids).
//   - An ordered topic's message is only ever sent to its primary DC, with
//     an epoch read from the metadata.
//   - Error statuses carry an ErrorInfo reason (errors.go); a broker's
//     refusal passes through with the broker's reason.
//
// # Use
//
//	p, err := proxy.New(cfg, proxy.Deps{Meta: cache, Ordered: store, Routes: routes, Presence: presence, Logger: log, Registerer: reg})
//	opts, err := p.ServerOptions()
//	s := grpc.NewServer(opts...)
//	p.Register(s)
//	go p.Run(ctx)
//	defer p.Close()
//
// internal/daemon.RunProxy does this wiring for `duomq proxy`, `duomq dev`
// and the test cluster.
package proxy
