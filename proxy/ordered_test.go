package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/nameserver"
	"github.com/duomq/duomq/proxy"
)

// TestOrderedPerKeyOrder: concurrent producers through both DCs' proxies
// write ordered messages to the primary DC only, never as a fallback, and
// every key's messages are stored in one queue in the order sent; an
// ordered group receives them in that order.
func TestOrderedPerKeyOrder(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "orders", Queues: 4, Ordered: true, Primary: dcA})
	const producers, keysPer, perKey = 6, 3, 20
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		px := c.ProxyClient(t, c.DCs()[p%2])
		wg.Go(func() {
			for i := range perKey {
				var msgs []*proxypb.Message
				for k := range keysPer {
					key := fmt.Sprintf("p%d-k%d", p, k)
					msgs = append(msgs, &proxypb.Message{ShardingKey: key, Body: []byte(key + ":" + strconv.Itoa(i))})
				}
				res, err := px.Send(testCtx(t), &proxypb.SendRequest{Topic: "orders", Messages: msgs})
				if err != nil {
					errs <- err
					return
				}
				for _, r := range res.Results {
					if r.Dc != dcA || r.Fallback {
						errs <- fmt.Errorf("ordered write %+v", r)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := writtenIn(t, c, dcB, "orders", 4); n != 0 {
		t.Fatalf("%d ordered messages written in idc-b, the primary is idc-a", n)
	}
	storedExactly(t, c, dcA, "orders", 4, producers*keysPer*perKey)
	checkStoredOrder(t, c, producers*keysPer, perKey)

	c.CreateGroup(t, meta.Group{Name: "fifo", Ordered: true, Subscriptions: []meta.Subscription{{Topic: "orders"}}})
	got := receiveAcked(t, c.ProxyClient(t, dcB), "fifo", "orders", producers*keysPer*perKey, 30*time.Second)
	checkOrder(t, got, producers*keysPer, perKey)
}

// checkStoredOrder pulls every queue of the primary DC and checks that
// each key lives in one queue with its sequence in order.
func checkStoredOrder(t *testing.T, c *testcluster.Cluster, keys, perKey int) {
	t.Helper()
	where := map[string]string{}
	var all []string
	for i := range c.Brokers(dcA) {
		bc := c.BrokerClient(t, dcA, i)
		for q := range uint32(4) {
			res, err := bc.Pull(testCtx(t), &brokerpb.PullRequest{Topic: "orders", QueueId: q, MaxMessages: 1024})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range res.Messages {
				loc := fmt.Sprintf("%d/%d", i, q)
				if w, ok := where[m.ShardingKey]; ok && w != loc {
					t.Fatalf("key %s in queues %s and %s", m.ShardingKey, w, loc)
				}
				where[m.ShardingKey] = loc
				if m.Epoch != 1 {
					t.Fatalf("message stored with epoch %d, want 1", m.Epoch)
				}
				all = append(all, string(m.Body))
			}
		}
	}
	checkOrder(t, all, keys, perKey)
}

// checkOrder checks that bodies "key:i" hold every key's 0..perKey-1 in
// order.
func checkOrder(t *testing.T, bodies []string, keys, perKey int) {
	t.Helper()
	next := map[string]int{}
	for _, b := range bodies {
		key, seq, _ := strings.Cut(b, ":")
		i, _ := strconv.Atoi(seq)
		if i != next[key] {
			t.Fatalf("key %s: got %d, want %d", key, i, next[key])
		}
		next[key]++
	}
	if len(next) != keys {
		t.Fatalf("%d keys, want %d", len(next), keys)
	}
	for k, n := range next {
		if n != perKey {
			t.Fatalf("key %s: %d messages, want %d", k, n, perKey)
		}
	}
}

// TestOrderedNeverFallsBack: blocking the primary DC for unordered traffic
// does not move ordered writes, and with the primary's brokers gone an
// ordered send fails with the reason instead of going to the other DC.
func TestOrderedNeverFallsBack(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "ledger", Queues: 2, Ordered: true, Primary: dcA})
	pxB := c.ProxyClient(t, dcB)
	rev, err := c.Meta().CASTraffic(testCtx(t), 0, meta.Traffic{BlockedDCs: []string{dcA}})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitMeta(t, rev)
	if r := send(t, pxB, "ledger", &proxypb.Message{ShardingKey: "k", Body: []byte("x")})[0]; r.Dc != dcA || r.Fallback {
		t.Fatalf("ordered write with idc-a blocked for unordered traffic: %+v", r)
	}
	c.StopBroker(t, dcA, 0)
	c.StopBroker(t, dcA, 1)
	testcluster.Eventually(t, func() bool {
		_, err := pxB.Send(testCtx(t), &proxypb.SendRequest{Topic: "ledger", Messages: []*proxypb.Message{{ShardingKey: "k", Body: []byte("y")}}})
		return err != nil
	}, "ordered send fails without the primary's brokers")
	_, err = pxB.Send(testCtx(t), &proxypb.SendRequest{Topic: "ledger", Messages: []*proxypb.Message{{ShardingKey: "k", Body: []byte("y")}}})
	wantStatus(t, err, codes.Unavailable, proxy.ReasonPrimaryUnavailable, "idc-a", "never fall back")
	if n := writtenIn(t, c, dcB, "ledger", 2); n != 0 {
		t.Fatalf("%d ordered messages written to idc-b", n)
	}
}

// laggingMeta is a metadata cache whose ordered records are pinned to an
// older epoch, as a cache that has not caught up would be.
type laggingMeta struct {
	*meta.Cache
	pinned map[string]meta.Ordered
}

func (l laggingMeta) Ordered(topic string) (meta.Ordered, int64, bool) {
	if o, ok := l.pinned[topic]; ok {
		return o, 1, true
	}
	return l.Cache.Ordered(topic)
}

// pinnedStore answers every re-read with the pinned epoch too.
type pinnedStore struct{ o meta.Ordered }

func (p pinnedStore) GetOrdered(context.Context, string) (meta.Ordered, int64, error) {
	return p.o, 1, nil
}

// TestStaleEpoch: a proxy whose metadata is behind stamps an old epoch;
// the broker refuses it, the proxy re-reads the record and the send
// succeeds under the new epoch. If the re-read is no newer, the send
// fails with STALE_EPOCH and nothing is stored.
func TestStaleEpoch(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "fenced", Queues: 2, Ordered: true, Primary: dcA})
	ctx, store := testCtx(t), c.Meta()
	old, rev, err := store.GetOrdered(ctx, "fenced")
	if err != nil {
		t.Fatal(err)
	}
	next := old
	next.Epoch++
	if rev, err = store.CASOrdered(ctx, "fenced", rev, next); err != nil {
		t.Fatal(err)
	}
	c.WaitMeta(t, rev)
	bc := c.BrokerClient(t, dcA, 0)
	testcluster.Eventually(t, func() bool {
		_, err := bc.Send(ctx, &brokerpb.SendRequest{Topic: "fenced", QueueId: 0, Epoch: old.Epoch, Messages: []*brokerpb.MessageInput{{Body: []byte("probe")}}})
		return err != nil
	}, "broker fenced at the new epoch")

	cache, err := meta.NewCache(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	lagging := laggingMeta{Cache: cache, pinned: map[string]meta.Ordered{"fenced": old}}
	px := startProxy(t, c, lagging, store)
	r := send(t, px, "fenced", &proxypb.Message{ShardingKey: "k1", Body: []byte("after")})[0]
	if r.Dc != dcA {
		t.Fatalf("send after a stale epoch: %+v", r)
	}

	stale := startProxy(t, c, lagging, pinnedStore{old})
	_, err = stale.Send(ctx, &proxypb.SendRequest{Topic: "fenced", Messages: []*proxypb.Message{{ShardingKey: "k1", Body: []byte("refused")}}})
	wantStatus(t, err, codes.FailedPrecondition, proxy.ReasonStaleEpoch, "epoch")
	// A marker behind it in the same queue: once the marker is visible,
	// so would the refused message be.
	marker := send(t, px, "fenced", &proxypb.Message{ShardingKey: "k1", Body: []byte("marker")})[0]
	if marker.QueueId != r.QueueId || marker.Broker != r.Broker {
		t.Fatalf("same key placed at %+v, then %+v", r, marker)
	}
	bc = c.BrokerClient(t, dcA, slices.Index(c.BrokerNames(dcA), r.Broker))
	var bodies []string
	testcluster.Eventually(t, func() bool {
		res, err := bc.Pull(ctx, &brokerpb.PullRequest{Topic: "fenced", QueueId: r.QueueId, Offset: r.Offset, MaxMessages: 16})
		if err != nil {
			return false
		}
		bodies = bodies[:0]
		for _, m := range res.Messages {
			bodies = append(bodies, string(m.Body))
		}
		return slices.Contains(bodies, "marker")
	}, "marker visible")
	if !slices.Equal(bodies, []string{"after", "marker"}) {
		t.Fatalf("queue after the stale send holds %q, want [after marker]", bodies)
	}
}

// startProxy runs a proxy of idc-a in the test process over the
// cluster's nameservers with the given metadata.
func startProxy(t *testing.T, c *testcluster.Cluster, md proxy.Metadata, ord proxy.OrderedReader) proxypb.ProxyClient {
	t.Helper()
	return startProxyWith(t, c, proxy.Deps{Meta: md, Ordered: ord})
}

// startProxyWith is startProxy with more of the proxy's dependencies
// (routes and logger are filled in).
func startProxyWith(t *testing.T, c *testcluster.Cluster, d proxy.Deps) proxypb.ProxyClient {
	t.Helper()
	cfg := proxy.DefaultConfig()
	cfg.DC = dcA
	cfg.Nameservers = map[string][]string{dcA: {c.Nameserver(dcA)}, dcB: {c.Nameserver(dcB)}}
	routes := map[string]proxy.Routes{}
	for dc, addrs := range cfg.Nameservers {
		rc, err := nameserver.NewRouteClient(addrs, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rc.Close)
		routes[dc] = rc
	}
	d.Routes, d.Logger = routes, slog.New(slog.DiscardHandler)
	p, err := proxy.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := p.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	p.Register(s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		s.Stop()
		p.Close()
	})
	return proxypb.NewProxyClient(cc)
}
