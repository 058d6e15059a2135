package replicator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/testcluster"
)

// setCluster runs both DCs with their two brokers in one replica set per
// DC ("set-a", "set-b"), and returns which broker leads each: its first
// live member claims the record, and the other becomes its standby.
func setCluster(t *testing.T, tune func(pc *daemon.BrokerProcess)) (*testcluster.Cluster, map[string][]string, map[string]int) {
	t.Helper()
	dirs := map[string][]string{}
	c := testcluster.New(t, testcluster.Options{Broker: func(dc string, i int, pc *daemon.BrokerProcess) {
		pc.Broker.ReplicaSet = "set-" + dc[len(dc)-1:]
		if tune != nil {
			tune(pc)
		}
		dirs[dc] = append(dirs[dc], pc.Broker.DataDir)
	}})
	lead := map[string]int{}
	for _, dc := range c.DCs() {
		names := c.BrokerNames(dc)
		r := waitSet(t, c, dc, func(r meta.ReplicaSet) bool {
			i := slices.Index(names, r.Leader)
			return i >= 0 && slices.Equal(r.InSync, []string{names[1-i]})
		}, "one broker leads with the other in sync")
		lead[dc] = slices.Index(names, r.Leader)
	}
	return c, dirs, lead
}

// waitSet waits until dc's replica set record satisfies cond.
func waitSet(t *testing.T, c *testcluster.Cluster, dc string, cond func(meta.ReplicaSet) bool, what string) meta.ReplicaSet {
	t.Helper()
	var last meta.ReplicaSet
	testcluster.Eventually(t, func() bool {
		r, _, err := c.Meta().GetReplicaSet(ctxOf(t), dc, "set-"+dc[len(dc)-1:])
		last = r
		return err == nil && cond(r)
	}, "replica set of %s: %s (last: %+v)", dc, what, &last)
	return last
}

// sendOrdered sends n messages keyed k0..k4 with bodies prefix-i,
// retrying each until it is acked (a send refused while the set's
// leadership moves is retried with the same id, as the SDK does).
func sendOrdered(t *testing.T, px proxypb.ProxyClient, topic, prefix string, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		testcluster.Eventually(t, func() bool {
			_, err := px.Send(ctxOf(t), &proxypb.SendRequest{Topic: topic, Messages: []*proxypb.Message{
				{Id: id, ShardingKey: fmt.Sprintf("k%d", i%5), Body: []byte(id)},
			}})
			return err == nil
		}, "send %s acked", id)
		ids = append(ids, id)
	}
	return ids
}

// checkOrder fails unless, per key, the first deliveries of bodies
// prefix-i come in increasing i.
func checkOrder(t *testing.T, got []*proxypb.ReceivedMessage) {
	t.Helper()
	last := map[string]int{}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.GetMessage().GetId()] {
			continue
		}
		seen[m.GetMessage().GetId()] = true
		body := string(m.GetMessage().GetBody())
		i, err := strconv.Atoi(body[strings.LastIndex(body, "-")+1:])
		if err != nil {
			t.Fatalf("body %q", body)
		}
		k := m.GetMessage().GetShardingKey()
		if p, ok := last[k]; ok && i <= p {
			t.Fatalf("key %s: %s after index %d", k, body, p)
		}
		last[k] = i
	}
}

// receiveAll receives and acks until every id of want arrived (at most
// 15 s), and returns what arrived in order.
func receiveAll(t *testing.T, px proxypb.ProxyClient, group, topic string, want []string) []*proxypb.ReceivedMessage {
	t.Helper()
	var got []*proxypb.ReceivedMessage
	seen := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	for !allSeen(seen, want) {
		if time.Now().After(deadline) {
			t.Fatalf("received %d distinct of %d messages of %s", len(seen), len(want), topic)
		}
		res, err := px.Receive(ctxOf(t), &proxypb.ReceiveRequest{Group: group, Topic: topic, MaxMessages: 32, WaitMillis: 300,
			InvisibleMillis: 2000, ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST, ClientId: "test"})
		if err != nil {
			continue // a pop refused while the set's leadership moves
		}
		for _, m := range res.GetMessages() {
			got = append(got, m)
			seen[m.GetMessage().GetId()] = true
			if _, err := px.Ack(ctxOf(t), &proxypb.AckRequest{Group: group, Topic: topic, ReceiptHandle: m.GetReceiptHandle()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

// committed lists a broker's committed offsets of topic as
// "group/queue@offset", sorted.
func committed(t *testing.T, bc brokerpb.BrokerClient, topic string) []string {
	t.Helper()
	res, err := bc.ListConsumerOffsets(ctxOf(t), &brokerpb.ListConsumerOffsetsRequest{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range res.GetOffsets() {
		out = append(out, fmt.Sprintf("%s/%d@%d", o.GetGroup(), o.GetQueueId(), o.GetOffset()))
	}
	slices.Sort(out)
	return out
}

func allSeen(seen map[string]bool, want []string) bool {
	for _, id := range want {
		if !seen[id] {
			return false
		}
	}
	return true
}

// The loss of a replica set's leader promotes its in-sync standby: the
// ordered topic stays in its DC (its epoch is raised), every acked
// message is still delivered in per-key order, consumers go on from
// their synced offsets, and the old leader returns as a standby that
// catches up and rejoins the in-sync list.
func TestReplicaSetPromotesStandbyWithoutMovingTheTopic(t *testing.T) {
	c, _, lead := setCluster(t, nil)
	l, sb := lead[dcA], 1-lead[dcA]
	names := c.BrokerNames(dcA)
	// RocketMQ's 2-3 mode: orders needs 2 copies of its 3 (the set's two
	// brokers and idc-b), strict all 3.
	c.CreateTopic(t, meta.Topic{Name: "orders", Queues: 2, Ordered: true, Primary: dcA, Replication: meta.ReplicationSync, MinInSyncReplicas: 2})
	c.CreateTopic(t, meta.Topic{Name: "strict", Queues: 2, Ordered: true, Primary: dcA, Replication: meta.ReplicationSync, MinInSyncReplicas: 3})
	c.CreateTopic(t, meta.Topic{Name: "events", Queues: 2, Replication: meta.ReplicationAsync})
	c.CreateGroup(t, meta.Group{Name: "billing", Subscriptions: []meta.Subscription{{Topic: "orders"}}, Ordered: true})
	c.CreateGroup(t, meta.Group{Name: "search", Subscriptions: []meta.Subscription{{Topic: "events"}}})
	pxA := c.ProxyClient(t, dcA)
	acked := sendOrdered(t, pxA, "orders", "o", 0, 20)
	sendOrdered(t, pxA, "strict", "s", 0, 5)
	events := sendOrdered(t, pxA, "events", "e", 0, 20)

	// The standby holds the leader's queues at the same offsets: every
	// acked ordered message was on it before its ack (min 2 in sync).
	leader, standby := c.BrokerClient(t, dcA, l), c.BrokerClient(t, dcA, sb)
	for q := range uint32(2) {
		l, s := queueRecords(t, leader, "orders", q), queueRecords(t, standby, "orders", q)
		if len(s) < len(l) || !slices.Equal(s[:len(l)], l) {
			t.Fatalf("queue %d: standby holds %v, leader %v", q, s, l)
		}
	}
	if _, err := standby.Send(ctxOf(t), &brokerpb.SendRequest{Topic: "orders", QueueId: 0, Epoch: 1,
		Messages: []*brokerpb.MessageInput{{Body: []byte("to a standby")}}}); err == nil {
		t.Fatal("a standby took a send")
	}
	// Consume half, so that the offsets the standby goes on from count.
	first := receiveAll(t, pxA, "billing", "orders", acked[:10])
	receiveAll(t, pxA, "search", "events", events)
	// The replicator copies the leader's consumer offsets to its standby.
	for _, topic := range []string{"orders", "events"} {
		testcluster.Eventually(t, func() bool {
			return slices.Equal(committed(t, leader, topic), committed(t, standby, topic))
		}, "offsets of %s on the standby equal the leader's", topic)
	}
	o1, _, err := c.Meta().GetOrdered(ctxOf(t), "orders")
	if err != nil {
		t.Fatal(err)
	}

	c.StopBroker(t, dcA, l)
	rec := waitSet(t, c, dcA, func(r meta.ReplicaSet) bool { return r.Leader == names[sb] }, "standby promoted")
	if rec.Term != 2 || len(rec.InSync) != 0 {
		t.Fatalf("after the promotion: %+v", rec)
	}
	o2, _, err := c.Meta().GetOrdered(ctxOf(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if o2.Primary != dcA || o2.Epoch != o1.Epoch+1 {
		t.Fatalf("ordered record %+v after %+v: the topic must stay in %s with its epoch raised", o2, o1, dcA)
	}

	// With no standby in sync, strict (3 copies) refuses sends until the
	// old leader is back in sync, nothing stored; orders (the new leader
	// and idc-b make 2) and events (floor 1) go on.
	// (Until the proxy sees the new leader, the send fails as unavailable:
	// ask again until the leader itself answers.)
	var lastErr error
	testcluster.Eventually(t, func() bool {
		_, lastErr = pxA.Send(ctxOf(t), &proxypb.SendRequest{Topic: "strict", Messages: []*proxypb.Message{{ShardingKey: "k0", Body: []byte("s-refused")}}})
		if lastErr == nil {
			t.Fatal("strict acked with 2 copies in sync, below min-in-sync-replicas 3")
		}
		return strings.Contains(lastErr.Error(), "min-in-sync-replicas")
	}, "strict refused below its floor, naming it (last: %v)", lastError{&lastErr})
	acked = append(acked, sendOrdered(t, pxA, "orders", "o", 20, 5)...)
	events = append(events, sendOrdered(t, pxA, "events", "e", 20, 10)...)
	c.StartBroker(t, dcA, l)
	waitSet(t, c, dcA, func(r meta.ReplicaSet) bool { return slices.Equal(r.InSync, []string{names[l]}) }, "old leader rejoined as a standby")
	acked = append(acked, sendOrdered(t, pxA, "orders", "o", 25, 5)...)
	sendOrdered(t, pxA, "strict", "s", 5, 5)

	var left []string // acked and not delivered before the promotion
	for _, id := range acked {
		if !slices.ContainsFunc(first, func(m *proxypb.ReceivedMessage) bool { return m.GetMessage().GetId() == id }) {
			left = append(left, id)
		}
	}
	rest := receiveAll(t, pxA, "billing", "orders", left)
	checkOrder(t, append(first, rest...))
	for _, m := range rest {
		if slices.ContainsFunc(first, func(f *proxypb.ReceivedMessage) bool { return f.GetMessage().GetId() == m.GetMessage().GetId() }) {
			t.Fatalf("%s, consumed and acked before the promotion, was delivered again", m.GetMessage().GetId())
		}
	}
	receiveAll(t, pxA, "search", "events", events[20:])
	for q := range uint32(2) {
		testcluster.Eventually(t, func() bool {
			return slices.Equal(queueRecords(t, c.BrokerClient(t, dcA, l), "orders", q), queueRecords(t, c.BrokerClient(t, dcA, sb), "orders", q))
		}, "queue %d of orders equal on both brokers of the set", q)
	}
}

// A leader lost with a record its in-sync standby lacks (stored, not
// acked): the standby is promoted without it, and the old leader, back
// as a standby, cuts it off (quarantined) before it follows. No consumer
// ever saw it.
func TestReplicaSetOldLeaderTruncatesUnackedTail(t *testing.T) {
	c, dirs, lead := setCluster(t, func(pc *daemon.BrokerProcess) {
		pc.Broker.ISRTimeout, pc.Broker.ReplicaTimeout = 3*time.Second, 4*time.Second
	})
	l, sb := lead[dcA], 1-lead[dcA]
	names := c.BrokerNames(dcA)
	c.CreateTopic(t, meta.Topic{Name: "ledger", Queues: 1, Ordered: true, Primary: dcA, Replication: meta.ReplicationAsync})
	c.CreateGroup(t, meta.Group{Name: "audit", Subscriptions: []meta.Subscription{{Topic: "ledger"}}, Ordered: true})
	pxA := c.ProxyClient(t, dcA)
	acked := sendOrdered(t, pxA, "ledger", "m", 0, 5)

	// The standby stops copying: a send is stored on the leader, which
	// waits for the standby and is given up by its caller.
	c.StopReplicator(t, dcA)
	ctx, cancel := context.WithTimeout(ctxOf(t), 300*time.Millisecond)
	_, err := c.BrokerClient(t, dcA, l).Send(ctx, &brokerpb.SendRequest{Topic: "ledger", QueueId: 0, Epoch: 1,
		Messages: []*brokerpb.MessageInput{{Id: "unacked-1", Body: []byte("never acked")}}})
	cancel()
	if err == nil {
		t.Fatal("a send was acked without the in-sync standby")
	}
	st, err := c.BrokerClient(t, dcA, l).ReplicaState(ctxOf(t), &brokerpb.ReplicaStateRequest{Topic: "ledger"})
	if err != nil {
		t.Fatal(err)
	}
	if n := st.GetQueues()[0].GetNextOffset(); n != 6 {
		t.Fatalf("leader holds %d records, want the 5 acked and the unacked one", n)
	}
	// Reads stop at what the standby holds.
	if n := len(queueRecords(t, c.BrokerClient(t, dcA, l), "ledger", 0)); n != 5 {
		t.Fatalf("the leader serves %d records, want the 5 its standby holds", n)
	}
	got := receiveAll(t, pxA, "audit", "ledger", acked)
	if slices.ContainsFunc(got, func(m *proxypb.ReceivedMessage) bool { return m.GetMessage().GetId() == "unacked-1" }) {
		t.Fatal("a record the standby lacked was delivered")
	}

	c.StopBroker(t, dcA, l)
	waitSet(t, c, dcA, func(r meta.ReplicaSet) bool { return r.Leader == names[sb] }, "standby promoted")
	acked = append(acked, sendOrdered(t, pxA, "ledger", "m", 5, 3)...)
	c.StartReplicator(t, dcA)
	c.StartBroker(t, dcA, l)
	waitSet(t, c, dcA, func(r meta.ReplicaSet) bool { return slices.Equal(r.InSync, []string{names[l]}) }, "old leader rejoined as a standby")

	old := queueRecords(t, c.BrokerClient(t, dcA, l), "ledger", 0)
	if !slices.Equal(old, queueRecords(t, c.BrokerClient(t, dcA, sb), "ledger", 0)) || len(old) != 8 {
		t.Fatalf("old leader holds %v, the new one %v", old, queueRecords(t, c.BrokerClient(t, dcA, sb), "ledger", 0))
	}
	if slices.ContainsFunc(old, func(s string) bool { return strings.HasPrefix(s, "unacked-1@") }) {
		t.Fatalf("unacked record still served: %v", old)
	}
	files, _ := filepath.Glob(filepath.Join(dirs[dcA][l], "quarantine", "ledger-0-5-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("quarantine files %v", files)
	}
	if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), `"id":"unacked-1"`) {
		t.Fatalf("quarantine file lacks the unacked record: %s", b)
	}
	rest := receiveAll(t, pxA, "audit", "ledger", acked[5:])
	if slices.ContainsFunc(rest, func(m *proxypb.ReceivedMessage) bool { return m.GetMessage().GetId() == "unacked-1" }) {
		t.Fatal("the unacked record was delivered")
	}
}

// lastError prints the error *p holds when a failure message is made.
type lastError struct{ p *error }

func (l lastError) String() string { return fmt.Sprint(*l.p) }
