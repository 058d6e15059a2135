package testcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/dr/meta"
)

// DefaultTimeout bounds Eventually and the waits of the helpers below.
const DefaultTimeout = 20 * time.Second

// Eventually polls cond every 20ms until it holds, failing t when
// DefaultTimeout passes first. what (a format and its arguments) says what
// was awaited.
func Eventually(t testing.TB, cond func() bool, what ...any) {
	t.Helper()
	deadline := time.Now().Add(DefaultTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "condition"
			if len(what) > 0 {
				msg = fmt.Sprintf(fmt.Sprint(what[0]), what[1:]...)
			}
			t.Fatalf("testcluster: not within %v: %s", DefaultTimeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CreateTopic creates a topic in the metadata and waits until every
// running broker of both DCs has it with its queue count, both
// nameservers route it to all of them, and both proxies' metadata has it.
func (c *Cluster) CreateTopic(t testing.TB, topic meta.Topic) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	rev, err := c.store.CreateTopic(ctx, topic)
	if err != nil {
		t.Fatalf("testcluster: create topic %s: %v", topic.Name, err)
	}
	c.WaitMeta(t, rev)
	for _, dc := range c.DCs() {
		Eventually(t, func() bool { return c.hostedEverywhere(dc, topic.Name, uint32(topic.Queues)) },
			"topic %s on every broker and route of %s", topic.Name, dc)
	}
}

// CreateGroup creates a consumer group and waits until both proxies'
// metadata has it.
func (c *Cluster) CreateGroup(t testing.TB, g meta.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	rev, err := c.store.CreateGroup(ctx, g)
	if err != nil {
		t.Fatalf("testcluster: create group %s: %v", g.Name, err)
	}
	c.WaitMeta(t, rev)
}

// WaitMeta waits until the metadata of every DC's components reflects
// the etcd revision rev (returned by every meta.Store write).
func (c *Cluster) WaitMeta(t testing.TB, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	for _, dc := range c.DCs() {
		if err := c.dcs[dc].cache.WaitRevision(ctx, rev); err != nil {
			t.Fatalf("testcluster: metadata of %s: %v", dc, err)
		}
	}
}

// hostedEverywhere reports whether every running broker of dc has topic
// with queues queues and dc's nameserver routes it to all of them.
func (c *Cluster) hostedEverywhere(dc, topic string, queues uint32) bool {
	s := c.dcs[dc]
	want := map[string]bool{}
	for _, b := range s.brokers {
		if b.run == nil {
			continue
		}
		want[b.name] = true
		if !brokerHas(b.addr, topic, queues) {
			return false
		}
	}
	route, err := c.route(dc, topic)
	if err != nil {
		return false
	}
	n := 0
	for _, b := range route.GetBrokers() {
		if want[b.GetBroker()] && b.GetQueues() == queues {
			n++
		}
	}
	return n == len(want)
}

func (c *Cluster) route(dc, topic string) (*nameserverpb.Route, error) {
	cc, err := grpc.NewClient(c.Nameserver(dc), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return nameserverpb.NewNameserverClient(cc).GetRoute(ctx, &nameserverpb.GetRouteRequest{Topic: topic, Dc: dc})
}

func brokerHas(addr, topic string, queues uint32) bool {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := brokerpb.NewBrokerClient(cc).ListTopics(ctx, &brokerpb.ListTopicsRequest{})
	if err != nil {
		return false
	}
	for _, tc := range res.GetTopics() {
		if tc.GetName() == topic && tc.GetQueues() >= queues {
			return true
		}
	}
	return false
}

// StopBroker stops the i-th broker of dc (as a crash of its process
// would, but its data is flushed) and waits until dc's nameserver no
// longer routes to it. Its address stays reserved for StartBroker.
func (c *Cluster) StopBroker(t testing.TB, dc string, i int) {
	t.Helper()
	b := c.site(dc).brokers[i]
	if b.run == nil {
		t.Fatalf("testcluster: broker %s is not running", b.name)
	}
	if err := b.run.stop(); err != nil {
		t.Errorf("testcluster: broker %s stopped with: %v", b.name, err)
	}
	b.run = nil
	Eventually(t, func() bool { return !c.registered(dc, b.name) }, "broker %s out of the nameserver of %s", b.name, dc)
}

// registered reports whether dc's nameserver lists the broker (true when
// the nameserver cannot be asked).
func (c *Cluster) registered(dc, name string) bool {
	cc, err := grpc.NewClient(c.Nameserver(dc), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return true
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := nameserverpb.NewNameserverClient(cc).ListBrokers(ctx, &nameserverpb.ListBrokersRequest{Dc: dc})
	if err != nil {
		return true
	}
	for _, b := range res.GetBrokers() {
		if b.GetBroker().GetName() == name {
			return true
		}
	}
	return false
}

// StartBroker starts the i-th broker of dc again on its data directory
// and its former address.
func (c *Cluster) StartBroker(t testing.TB, dc string, i int) {
	t.Helper()
	s := c.site(dc)
	b := s.brokers[i]
	if b.run != nil {
		t.Fatalf("testcluster: broker %s is running", b.name)
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = c.runBroker(s, b); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger for a moment
	}
	t.Fatalf("testcluster: restart broker %s: %v", b.name, err)
}

// BrokerClient is a direct client of the i-th broker of dc, closed with
// the cluster: for tests that compare with the proxy or look behind it.
func (c *Cluster) BrokerClient(t testing.TB, dc string, i int) brokerpb.BrokerClient {
	t.Helper()
	cc, err := grpc.NewClient(c.site(dc).brokers[i].addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(128<<20)))
	if err != nil {
		t.Fatalf("testcluster: dial broker: %v", err)
	}
	c.mu.Lock()
	c.clients = append(c.clients, cc)
	c.mu.Unlock()
	return brokerpb.NewBrokerClient(cc)
}
