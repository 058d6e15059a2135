// Package etcdtest runs a real etcd cluster of embedded members inside a
// test process, on 127.0.0.1, for tests of everything that stores metadata
// in etcd. Members can be killed (a crash, no graceful leave) and restarted
// on the same data directory, so tests can take quorum away and give it
// back.
//
// Ports are picked up front (etcd needs every peer URL before the first
// member starts) and the whole cluster is retried on fresh ports if one
// was taken in between. Cleanup closes the clients handed out by Client
// first, then stops every member without a leadership transfer (about a
// second in all).
//
//	c := etcdtest.NewCluster(t, 3)
//	cli := c.Client(t)
//	c.Kill(c.Leader(t, 5*time.Second)) // quorum of 2 remains
//	c.Restart(t, i)
//
// Set DUOMQ_TEST_ETCD_LOG=1 to see etcd's warnings on stderr.
package etcdtest
