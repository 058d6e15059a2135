// Package testcluster runs a whole duomq topology inside a test process:
// a 3-member etcd (internal/etcdtest), and in each of two DCs (idc-a,
// idc-b) a nameserver, brokers whose topics follow the metadata, and a
// proxy, all through internal/daemon, the code the real processes run.
// Everything listens on 127.0.0.1 on kernel-chosen ports.
//
//	c := testcluster.New(t, testcluster.Options{})
//	c.CreateTopic(t, meta.Topic{Name: "orders", Queues: 4})
//	c.CreateGroup(t, meta.Group{Name: "billing", Subscriptions: []meta.Subscription{{Topic: "orders"}}})
//	px := c.ProxyClient(t, testcluster.DCA)
//	px.Send(ctx, &proxypb.SendRequest{Topic: "orders", Messages: ...})
//	c.StopBroker(t, testcluster.DCA, 0)
//	testcluster.Eventually(t, func() bool { ... }, "what is awaited")
//
// CreateTopic and CreateGroup return once every broker, nameserver and
// proxy sees the change, so a test can use them at once. Tests that
// change the metadata themselves (traffic, DC states, ordered epochs)
// pass the write's revision to WaitMeta.
//
// Close (registered with t.Cleanup) stops the proxies, then the brokers
// and nameservers, then etcd, each kind concurrently: about a second, and
// no goroutine is left behind.
package testcluster
