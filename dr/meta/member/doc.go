// Package member runs one embedded etcd member of duomq's global metadata
// service: one per site (idc-a, idc-b and the witness), so two DCs plus a
// witness keep a quorum of 2 of 3 when any one site is lost.
//
// It owns the etcd server process inside a duomq process: its
// configuration, start-up until the member is ready, a graceful Close, and
// HardStop, which simulates a crash for tests and drills.
//
// Invariants and conventions:
//
//   - Peer URLs are fixed and known up front: InitialCluster names every
//     member's peer URL, as etcd's static bootstrap requires. A member that
//     restarts with its data directory ignores InitialCluster and
//     ClusterState; "existing" is used for members joining an existing
//     cluster with an empty data directory.
//   - etcd's zap logger is bridged to the *slog.Logger of the Config at warn
//     level and above (or discarded when Logger is nil), so etcd never writes
//     to stderr on its own; its lines carry component=meta, subsystem=etcd.
//   - etcd registers its server metrics on the global Prometheus registry at
//     package init, once per process, and every member in the process shares
//     them. Several members therefore run in one process (tests) without
//     registration conflicts; per-member metrics are not separated. The
//     member starts no metrics listener.
//   - Close stops client connections first (after a short grace period),
//     then the server, so it does not wait out etcd's request timeout for
//     clients that are still connected. Clients should still be closed
//     before their members.
//
// Authentication: AuthToken selects etcd's token provider ("simple" or
// "jwt,..."). Turning authentication on is an operator step done once with
// etcdctl against the running cluster:
//
//	etcdctl user add root
//	etcdctl auth enable
//
// after which every client (clientv3.Config.Username/Password) must log in.
//
// Usage:
//
//	cfg := member.DefaultConfig()
//	cfg.Name, cfg.DataDir = "idc-a", "/var/lib/duomq/etcd"
//	cfg.ClientURL, cfg.PeerURL = "http://10.0.0.1:2379", "http://10.0.0.1:2380"
//	cfg.InitialCluster = map[string]string{"idc-a": "http://10.0.0.1:2380", ...}
//	m, err := member.Start(ctx, cfg)
//	...
//	defer m.Close()
package member
