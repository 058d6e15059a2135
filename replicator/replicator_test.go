package replicator_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/leakcheck"
	"github.com/duomq/duomq/internal/names"
	"github.com/duomq/duomq/internal/rpcerr"
	"github.com/duomq/duomq/internal/testcluster"
	"github.com/duomq/duomq/proxy"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

const (
	dcA = testcluster.DCA
	dcB = testcluster.DCB
)

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// queueRecords lists "id@offset/epoch" of one queue on one broker.
func queueRecords(t *testing.T, bc brokerpb.BrokerClient, topic string, q uint32) []string {
	t.Helper()
	var out []string
	for off := int64(0); ; {
		res, err := bc.Pull(ctxOf(t), &brokerpb.PullRequest{Topic: topic, QueueId: q, Offset: off, MaxMessages: 1024})
		if err != nil {
			t.Fatalf("pull %s/%d@%d: %v", topic, q, off, err)
		}
		for _, m := range res.GetMessages() {
			out = append(out, fmt.Sprintf("%s@%d/e%d", m.GetId(), m.GetQueueOffset(), m.GetEpoch()))
		}
		if res.GetNextOffset() == off {
			return out
		}
		off = res.GetNextOffset()
	}
}

// sameQueues waits until every queue of topic holds the same records at
// the same offsets in both DCs (broker i of each DC hosts queues q with
// q mod n == i).
func sameQueues(t *testing.T, c *testcluster.Cluster, topic string, queues int, want int) {
	t.Helper()
	n := len(c.Brokers(dcA))
	testcluster.Eventually(t, func() bool {
		total := 0
		for q := range queues {
			a := queueRecords(t, c.BrokerClient(t, dcA, q%n), topic, uint32(q))
			b := queueRecords(t, c.BrokerClient(t, dcB, q%n), topic, uint32(q))
			if !slices.Equal(a, b) {
				return false
			}
			total += len(a)
		}
		return total == want
	}, "queues of %s equal in both DCs with %d records", topic, want)
}

func sendKeys(t *testing.T, px proxypb.ProxyClient, topic, prefix string, n int) {
	t.Helper()
	for i := range n {
		_, err := px.Send(ctxOf(t), &proxypb.SendRequest{Topic: topic, Messages: []*proxypb.Message{
			{ShardingKey: fmt.Sprintf("k%d", i%5), Body: fmt.Appendf(nil, "%s-%d", prefix, i)},
		}})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// loseDC stops every broker of dc and marks it down, as the controller
// does once they are gone.
func loseDC(t *testing.T, c *testcluster.Cluster, dc string) {
	t.Helper()
	for i := range len(c.Brokers(dc)) {
		c.StopBroker(t, dc, i)
	}
	rev, err := c.Meta().SetDCState(ctxOf(t), dc, meta.DCDown, "test")
	if err != nil {
		t.Fatal(err)
	}
	c.WaitMeta(t, rev)
}

// receiveAcked receives from the earliest offset and acks until n messages
// arrived (at most 10 s) and returns their ids.
// The messages are invisible for 2 s only: a long poll that another
// broker's answer cut short may have popped messages whose answer was
// cancelled in flight; they come back to the next receive after their
// invisibility instead of being missing for the rest of a test.
func receiveAcked(t *testing.T, px proxypb.ProxyClient, group, topic string, n int) []string {
	t.Helper()
	var ids []string
	deadline := time.Now().Add(10 * time.Second)
	for len(ids) < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d messages of %s", len(ids), n, topic)
		}
		res, err := px.Receive(ctxOf(t), &proxypb.ReceiveRequest{Group: group, Topic: topic, MaxMessages: int32(n - len(ids)), WaitMillis: 300,
			InvisibleMillis: 2000, ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST, ClientId: "test"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.GetMessages() {
			ids = append(ids, m.GetMessage().GetId())
			if _, err := px.Ack(ctxOf(t), &proxypb.AckRequest{Group: group, Topic: topic, ReceiptHandle: m.GetReceiptHandle()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ids
}

func TestSyncOrderedTopicCopiedAtSameOffsetsWithOffsets(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "orders", Queues: 4, Ordered: true, Primary: dcA, Replication: meta.ReplicationSync})
	c.CreateGroup(t, meta.Group{Name: "billing", Subscriptions: []meta.Subscription{{Topic: "orders"}}, Ordered: true})
	pxA := c.ProxyClient(t, dcA)
	sendKeys(t, pxA, "orders", "m", 40)
	sameQueues(t, c, "orders", 4, 40)

	// Consume and ack some in the primary DC: the offsets reach idc-b.
	receiveAcked(t, pxA, "billing", "orders", 10)
	n := len(c.Brokers(dcA))
	testcluster.Eventually(t, func() bool {
		for q := range 4 {
			a, err := c.BrokerClient(t, dcA, q%n).QueryOffset(ctxOf(t), &brokerpb.QueryOffsetRequest{Group: "billing", Topic: "orders", QueueId: uint32(q)})
			if err != nil {
				t.Fatal(err)
			}
			b, err := c.BrokerClient(t, dcB, q%n).QueryOffset(ctxOf(t), &brokerpb.QueryOffsetRequest{Group: "billing", Topic: "orders", QueueId: uint32(q)})
			if err != nil {
				t.Fatal(err)
			}
			if a.GetFound() != b.GetFound() || a.GetOffset() != b.GetOffset() {
				return false
			}
		}
		return true
	}, "consumer offsets of billing equal in idc-b")
}

// The old primary's unreplicated tail: never served while it was the
// leader (sync reads stop at what idc-b acknowledged), cut and quarantined
// when it follows the new primary.
func TestDivergentTailTruncatedWhenOldPrimaryFollows(t *testing.T) {
	var dataDirs []string
	c := testcluster.New(t, testcluster.Options{Broker: func(dc string, i int, pc *daemon.BrokerProcess) {
		pc.Broker.ReplicaTimeout, pc.Broker.ISRTimeout = 300*time.Millisecond, 200*time.Millisecond
		if dc == dcA {
			dataDirs = append(dataDirs, pc.Broker.DataDir)
		}
	}})
	c.CreateTopic(t, meta.Topic{Name: "ledger", Queues: 1, Ordered: true, Primary: dcA, Replication: meta.ReplicationSync})
	c.CreateGroup(t, meta.Group{Name: "audit", Subscriptions: []meta.Subscription{{Topic: "ledger"}}, Ordered: true})
	pxA := c.ProxyClient(t, dcA)
	sendKeys(t, pxA, "ledger", "m", 5)
	sameQueues(t, c, "ledger", 1, 5)

	// idc-b stops following: a send is stored on idc-a but never acked.
	c.StopReplicator(t, dcB)
	_, err := c.BrokerClient(t, dcA, 0).Send(ctxOf(t), &brokerpb.SendRequest{Topic: "ledger", QueueId: 0, Epoch: 1,
		Messages: []*brokerpb.MessageInput{{Id: "divergent-1", Body: []byte("never acked")}}})
	if err == nil {
		t.Fatal("sync send acked without the follower")
	}
	// Consumers of idc-a never see it.
	ids := receiveAcked(t, pxA, "audit", "ledger", 5)
	if slices.Contains(ids, "divergent-1") {
		t.Fatalf("unreplicated message delivered: %v", ids)
	}
	if res, _ := pxA.Receive(ctxOf(t), &proxypb.ReceiveRequest{Group: "audit", Topic: "ledger", MaxMessages: 10, WaitMillis: 300}); len(res.GetMessages()) != 0 {
		t.Fatalf("unreplicated message delivered: %v", res.GetMessages())
	}

	// Failover to idc-b (as the controller does once idc-a's lease ended).
	store := c.Meta()
	o, rev, err := store.GetOrdered(ctxOf(t), "ledger")
	if err != nil {
		t.Fatal(err)
	}
	rev, err = store.CASOrdered(ctxOf(t), "ledger", rev, meta.Ordered{Primary: dcB, Epoch: o.Epoch + 1})
	if err != nil {
		t.Fatal(err)
	}
	c.WaitMeta(t, rev)
	pxB := c.ProxyClient(t, dcB)
	testcluster.Eventually(t, func() bool {
		_, err := pxB.Send(ctxOf(t), &proxypb.SendRequest{Topic: "ledger", Messages: []*proxypb.Message{{ShardingKey: "k", Body: []byte("after")}}})
		return err == nil
	}, "idc-b takes writes after the failover")
	c.StartReplicator(t, dcB)
	// idc-a follows idc-b: its tail is cut, then both queues are equal.
	sameQueues(t, c, "ledger", 1, 6)
	recs := queueRecords(t, c.BrokerClient(t, dcA, 0), "ledger", 0)
	if slices.ContainsFunc(recs, func(s string) bool { return strings.HasPrefix(s, "divergent-1@") }) {
		t.Fatalf("divergent record still served: %v", recs)
	}
	files, _ := filepath.Glob(filepath.Join(dataDirs[0], "quarantine", "ledger-0-5-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("quarantine files %v", files)
	}
	if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), `"id":"divergent-1"`) {
		t.Fatalf("quarantine file lacks the divergent record: %s", b)
	}
	if _, err := c.BrokerClient(t, dcA, 0).LookupByID(ctxOf(t), &brokerpb.LookupByIDRequest{Id: "divergent-1"}); err == nil {
		t.Fatal("quarantined record found by id")
	}
}

// An unordered topic with replication: each DC's queues are copied into a
// mirror in the other DC at the same offsets, with the consumer offsets;
// when a DC is down, consumers in the other DC read its unconsumed
// messages from the mirror, and none it had consumed.
func TestUnorderedTopicMirroredAndReadWhileItsDCIsDown(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	const queues = 4
	c.CreateTopic(t, meta.Topic{Name: "clicks", Queues: queues, Replication: meta.ReplicationAsync})
	c.CreateGroup(t, meta.Group{Name: "stats", Subscriptions: []meta.Subscription{{Topic: "clicks"}}})
	pxA, pxB := c.ProxyClient(t, dcA), c.ProxyClient(t, dcB)
	var fromA, all []string
	for i := range 40 {
		for _, px := range []proxypb.ProxyClient{pxA, pxB} {
			res, err := px.Send(ctxOf(t), &proxypb.SendRequest{Topic: "clicks", Messages: []*proxypb.Message{{Body: fmt.Appendf(nil, "click-%d", i)}}})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, res.GetResults()[0].GetId())
			if px == pxA {
				fromA = append(fromA, res.GetResults()[0].GetId())
			}
		}
	}
	n := len(c.Brokers(dcA))
	for _, pair := range [][2]string{{dcA, dcB}, {dcB, dcA}} {
		src, dst := pair[0], pair[1]
		mirror := names.MirrorTopic(src, "clicks")
		testcluster.Eventually(t, func() bool {
			total := 0
			for q := range queues {
				a := queueRecords(t, c.BrokerClient(t, src, q%n), "clicks", uint32(q))
				b := queueRecords(t, c.BrokerClient(t, dst, q%n), mirror, uint32(q))
				if !slices.Equal(a, b) {
					return false
				}
				total += len(a)
			}
			return total == 40
		}, "%s's queues of clicks copied into %s at the same offsets", src, mirror)
	}

	// idc-a's consumers take 15 messages (of both DCs: idc-b has no
	// consumers of the group yet); the offsets follow.
	consumed := receiveAcked(t, pxA, "stats", "clicks", 15)
	fromAConsumed := 0
	for _, id := range consumed {
		if slices.Contains(fromA, id) {
			fromAConsumed++
		}
	}
	// Every message taken from idc-a's queues is committed there (the
	// sum of the offsets counts them) and the offsets reached the mirror.
	mirror := names.MirrorTopic(dcA, "clicks")
	testcluster.Eventually(t, func() bool {
		var sum int64
		for q := range queues {
			a, aerr := c.BrokerClient(t, dcA, q%n).QueryOffset(ctxOf(t), &brokerpb.QueryOffsetRequest{Group: "stats", Topic: "clicks", QueueId: uint32(q)})
			b, berr := c.BrokerClient(t, dcB, q%n).QueryOffset(ctxOf(t), &brokerpb.QueryOffsetRequest{Group: "stats", Topic: mirror, QueueId: uint32(q)})
			if aerr != nil || berr != nil || a.GetOffset() != b.GetOffset() {
				return false
			}
			sum += a.GetOffset()
		}
		return sum == int64(fromAConsumed)
	}, "offsets of stats committed in idc-a and copied to the mirror")

	loseDC(t, c, dcA)
	got := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < len(all)-len(consumed) && time.Now().Before(deadline) {
		// No wait: every receive sweeps all targets, which is what once
		// found a stale partial copy of a mirror queue on another broker.
		res, err := pxB.Receive(ctxOf(t), &proxypb.ReceiveRequest{Group: "stats", Topic: "clicks", MaxMessages: 32, WaitMillis: 0,
			InvisibleMillis: 2000, ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST, ClientId: "test"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.GetMessages() {
			if m.GetMessage().GetTopic() != "clicks" {
				t.Fatalf("message presented under topic %q", m.GetMessage().GetTopic())
			}
			got[m.GetMessage().GetId()] = true
			pxB.Ack(ctxOf(t), &proxypb.AckRequest{Group: "stats", Topic: "clicks", ReceiptHandle: m.GetReceiptHandle()})
		}
	}
	for _, id := range consumed {
		if got[id] {
			t.Fatalf("message %s consumed in idc-a before the loss was delivered again from the mirror", id)
		}
	}
	missing, mirrored := 0, 0
	for _, id := range all {
		if !got[id] && !slices.Contains(consumed, id) {
			missing++
		}
	}
	for _, id := range fromA {
		if got[id] {
			mirrored++
		}
	}
	if missing != 0 || len(got) != len(all)-len(consumed) || mirrored == 0 {
		t.Fatalf("received %d messages in idc-b, want the %d unconsumed; %d missing; %d of idc-a's read from the mirror", len(got), len(all)-len(consumed), missing, mirrored)
	}
}

// A broker of the primary DC stops: the queues it holds stay on it (the
// placement is over the registered brokers), so sends to them fail until
// it returns while the other broker's queues go on, and the other DC's
// copy of its queues is neither truncated nor written past. Before, the
// placement was over the live brokers: its queues moved to a broker
// without their data, which took writes at offset 0 and made the
// follower truncate its copy.
func TestPrimaryBrokerLossLeavesItsQueuesInPlace(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "orders", Queues: 2, Ordered: true, Primary: dcA, Replication: meta.ReplicationSync})
	pxA := c.ProxyClient(t, dcA)
	sendKeys(t, pxA, "orders", "m", 20)
	sameQueues(t, c, "orders", 2, 20)
	q0Before := queueRecords(t, c.BrokerClient(t, dcB, 0), "orders", 0)

	c.StopBroker(t, dcA, 0) // holds queue 0
	// Keys are spread over both queues: those of queue 0 are refused,
	// naming the broker that is down; those of queue 1 are stored there.
	var refused, stored, storedAll int
	testcluster.Eventually(t, func() bool {
		refused, stored = 0, 0
		for i := range 10 {
			res, err := pxA.Send(ctxOf(t), &proxypb.SendRequest{Topic: "orders", Messages: []*proxypb.Message{{ShardingKey: fmt.Sprintf("key-%d", i), Body: []byte("x")}}})
			switch {
			case err == nil && res.GetResults()[0].GetQueueId() == 1:
				stored++
				storedAll++
			case err == nil:
				t.Fatalf("queue %d written while its broker is down: %+v", res.GetResults()[0].GetQueueId(), res.GetResults()[0])
			case rpcerr.Reason(err) == proxy.ReasonPrimaryUnavailable && strings.Contains(err.Error(), "down"):
				refused++
			}
		}
		return refused > 0 && stored > 0 && refused+stored == 10
	}, "sends to queue 0 refused and to queue 1 stored")
	total := 20 + storedAll
	testcluster.Eventually(t, func() bool {
		return len(queueRecords(t, c.BrokerClient(t, dcB, 1), "orders", 1)) == len(queueRecords(t, c.BrokerClient(t, dcA, 1), "orders", 1))
	}, "queue 1 copied")
	if got := queueRecords(t, c.BrokerClient(t, dcB, 0), "orders", 0); !slices.Equal(got, q0Before) {
		t.Fatalf("idc-b's copy of queue 0 changed while its primary broker was down:\nbefore %v\nafter  %v", q0Before, got)
	}

	c.StartBroker(t, dcA, 0)
	testcluster.Eventually(t, func() bool {
		ok := 0
		for i := range 10 {
			if _, err := pxA.Send(ctxOf(t), &proxypb.SendRequest{Topic: "orders", Messages: []*proxypb.Message{{ShardingKey: fmt.Sprintf("key-%d", i), Body: []byte("y")}}}); err == nil {
				ok++
			}
		}
		total += ok
		return ok == 10
	}, "every queue writable after the broker returned")
	sameQueues(t, c, "orders", 2, total)
}

// A message whose delivery failed in idc-a waits in idc-a's retry queue,
// and one that failed too often in its dead-letter queue. Both are copied
// into idc-b's mirrors of them, so when idc-a is lost idc-b's consumers
// receive the pending redeliveries (with their reconsume count, under
// their topic) and the dead letter is kept.
func TestRetryAndDeadLetterQueuesMirrored(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{})
	c.CreateTopic(t, meta.Topic{Name: "clicks", Queues: 2, Replication: meta.ReplicationAsync})
	c.CreateGroup(t, meta.Group{Name: "stats", Subscriptions: []meta.Subscription{{Topic: "clicks"}}, MaxRetries: 1})
	pxA, pxB := c.ProxyClient(t, dcA), c.ProxyClient(t, dcB)
	var ids []string
	for i := range 5 {
		res, err := pxA.Send(ctxOf(t), &proxypb.SendRequest{Topic: "clicks", Messages: []*proxypb.Message{{Body: fmt.Appendf(nil, "click-%d", i)}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.GetResults()[0].GetId())
	}
	dead := ids[4]
	receive := func(px proxypb.ProxyClient) []*proxypb.ReceivedMessage {
		res, err := px.Receive(ctxOf(t), &proxypb.ReceiveRequest{Group: "stats", Topic: "clicks", MaxMessages: 16, WaitMillis: 200,
			InvisibleMillis: 60000, ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST, ClientId: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetMessages()
	}
	nack := func(px proxypb.ProxyClient, m *proxypb.ReceivedMessage) {
		if _, err := px.ChangeInvisibleDuration(ctxOf(t), &proxypb.ChangeInvisibleDurationRequest{Group: "stats", Topic: "clicks",
			ReceiptHandle: m.GetReceiptHandle(), InvisibleMillis: 0, ClientId: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	// Every first delivery fails in idc-a; so does the dead one's retry.
	// The other four retries are taken and left in flight (unsettled).
	first, retried := 0, map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for (first < 5 || len(retried) < 5) && time.Now().Before(deadline) {
		for _, m := range receive(pxA) {
			switch id := m.GetMessage().GetId(); {
			case m.GetMessage().GetReconsumeTimes() == 0:
				first++
				nack(pxA, m)
			case id == dead:
				retried[id] = true
				nack(pxA, m)
			default:
				retried[id] = true
			}
		}
	}
	if first != 5 || len(retried) != 5 {
		t.Fatalf("idc-a: %d first deliveries, %d retries, want 5 and 5", first, len(retried))
	}

	n := len(c.Brokers(dcB))
	copies := func(topic string) []string {
		var out []string
		for q := range n {
			out = append(out, queueRecords(t, c.BrokerClient(t, dcB, q), names.MirrorTopic(dcA, topic), uint32(q))...)
		}
		return out
	}
	testcluster.Eventually(t, func() bool { return len(copies(names.RetryTopic("stats"))) == 5 }, "idc-a's five retry copies in idc-b's mirror")
	testcluster.Eventually(t, func() bool {
		return slices.ContainsFunc(copies(names.DLQTopic("stats")), func(s string) bool { return strings.HasPrefix(s, dead+":") })
	}, "idc-a's dead letter in idc-b's mirror")
	// The first deliveries were settled in idc-a (moved to the retry
	// queue): their offsets reach idc-b's mirror of clicks.
	testcluster.Eventually(t, func() bool {
		var sum int64
		for q := range 2 {
			res, err := c.BrokerClient(t, dcB, q%n).QueryOffset(ctxOf(t), &brokerpb.QueryOffsetRequest{Group: "stats", Topic: names.MirrorTopic(dcA, "clicks"), QueueId: uint32(q)})
			if err != nil {
				return false
			}
			sum += res.GetOffset()
		}
		return sum == 5
	}, "offsets of clicks synced to idc-b's mirror")

	loseDC(t, c, dcA)
	got := map[string]bool{}
	deadline = time.Now().Add(20 * time.Second)
	for len(got) < 4 && time.Now().Before(deadline) {
		for _, m := range receive(pxB) {
			msg := m.GetMessage()
			if msg.GetTopic() != "clicks" || msg.GetReconsumeTimes() < 1 {
				t.Fatalf("redelivery from the mirror presented as %s with reconsume times %d", msg.GetTopic(), msg.GetReconsumeTimes())
			}
			if msg.GetReconsumeTimes() == 0 || !slices.Contains(ids, msg.GetId()) {
				t.Fatalf("unexpected message %s", msg.GetId())
			}
			if msg.GetId() != dead {
				got[msg.GetId()] = true
			}
			if _, err := pxB.Ack(ctxOf(t), &proxypb.AckRequest{Group: "stats", Topic: "clicks", ReceiptHandle: m.GetReceiptHandle()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(got) != 4 {
		t.Fatalf("idc-b received %d of idc-a's four pending redeliveries", len(got))
	}
}
