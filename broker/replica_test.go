package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/offsets"
)

// dcBroker opens a broker of dc with an ordered topic "ord" (1 queue).
func dcBroker(t *testing.T, dc, dir string, tweak func(*Config)) *Broker {
	t.Helper()
	cfg := testConfig(dir)
	cfg.Name, cfg.DC = "broker-"+dc, dc
	if tweak != nil {
		tweak(&cfg)
	}
	b := openBroker(t, cfg)
	if _, err := b.Topic("ord"); errors.Is(err, ErrUnknownTopic) {
		mustCreate(t, b, "ord", 1)
	}
	return b
}

func setOrder(t *testing.T, b *Broker, epoch uint64, primary, repl string, followers ...string) {
	t.Helper()
	if err := b.SetTopicOrder("ord", epoch, Order{Primary: primary, Replication: repl, Followers: followers}); err != nil {
		t.Fatal(err)
	}
}

// replicateOnce runs one pass of the replicator's loop for queue 0 of
// "ord": truncate when told, else copy what the fetch returned. It returns
// the follower's next offset and the leader's.
func replicateOnce(t *testing.T, leader, follower *Broker, wait time.Duration) (int64, int64, int64) {
	t.Helper()
	ctx := context.Background()
	st, err := follower.ReplicaState(ctx, "ord")
	if err != nil {
		t.Fatal(err)
	}
	q := st.Queues[0]
	res, err := leader.ReplicaFetch(ctx, ReplicaFetchRequest{Topic: "ord", Offset: q.NextOffset, LastEpoch: q.LastEpoch, Wait: wait, FollowerDC: follower.DC()})
	if err != nil {
		t.Fatalf("ReplicaFetch: %v", err)
	}
	if res.Diverging {
		n, _, err := follower.ReplicaTruncate(ctx, "ord", 0, res.TruncateTo, res.Epoch, "test")
		if err != nil {
			t.Fatalf("ReplicaTruncate: %v", err)
		}
		return q.NextOffset - n, res.LeaderNext, n
	}
	if len(res.Messages) == 0 {
		return q.NextOffset, res.LeaderNext, 0
	}
	next, err := follower.ReplicaAppend(ctx, "ord", 0, q.NextOffset, res.Messages)
	if err != nil {
		t.Fatalf("ReplicaAppend: %v", err)
	}
	return next, res.LeaderNext, 0
}

// catchUp replicates until the follower holds everything the leader has,
// then makes one more fetch so the leader sees the acknowledgement.
func catchUp(t *testing.T, leader, follower *Broker) (truncated int64) {
	t.Helper()
	st, err := leader.ReplicaState(context.Background(), "ord")
	if err != nil {
		t.Fatal(err)
	}
	target := st.Queues[0].NextOffset
	for range 100 {
		next, _, n := replicateOnce(t, leader, follower, 0)
		truncated += n
		if next == target && n == 0 {
			replicateOnce(t, leader, follower, 0)
			return truncated
		}
	}
	t.Fatal("follower did not catch up")
	return 0
}

func sendOrd(b *Broker, epoch uint64, bodies ...string) ([]SendResult, error) {
	msgs := make([]Message, len(bodies))
	for i, s := range bodies {
		msgs[i] = Message{ID: "id-" + s, Body: []byte(s)}
	}
	return b.Send(context.Background(), SendRequest{Topic: "ord", QueueID: 0, Epoch: epoch, Idempotent: true, Messages: msgs})
}

func queueBodies(t *testing.T, b *Broker) []string {
	t.Helper()
	var out []string
	for off := int64(0); ; {
		res, err := b.Pull(context.Background(), PullRequest{Topic: "ord", Offset: off, MaxMessages: 1000, replica: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Messages {
			out = append(out, fmt.Sprintf("%s@%d/e%d", m.Body, m.QueueOffset, m.Epoch))
		}
		if res.NextOffset == off {
			return out
		}
		off = res.NextOffset
	}
}

func TestFollowerCopiesAtSameOffsetsAndRoles(t *testing.T) {
	a := dcBroker(t, "idc-a", t.TempDir(), nil)
	b := dcBroker(t, "idc-b", t.TempDir(), nil)
	setOrder(t, a, 1, "idc-a", "async", "idc-b")
	setOrder(t, b, 1, "idc-a", "async", "idc-b")
	if _, err := sendOrd(a, 1, "m0", "m1", "m2"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendOrd(b, 1, "x"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("send to the follower: %v, want ErrNotLeader", err)
	}
	if _, err := a.ReplicaAppend(context.Background(), "ord", 0, 3, nil); err == nil {
		t.Fatal("empty replica append accepted")
	}
	catchUp(t, a, b)
	if got, want := strings.Join(queueBodies(t, b), ","), strings.Join(queueBodies(t, a), ","); got != want {
		t.Fatalf("follower %s, leader %s", got, want)
	}
	res, err := b.ReplicaFetch(context.Background(), ReplicaFetchRequest{Topic: "ord", Offset: 0, FollowerDC: "idc-a"})
	if err != nil || len(res.Messages) != 3 || res.Messages[0].Flags&commitlog.FlagReplicated == 0 {
		t.Fatalf("follower fetch: %v %d", err, len(res.Messages))
	}
	if _, err := a.ReplicaAppend(context.Background(), "ord", 0, 3, res.Messages[:1]); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("replica append to the leader: %v", err)
	}
	if _, err := b.ReplicaAppend(context.Background(), "ord", 0, 1, res.Messages[1:2]); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("replica append at a wrong offset: %v", err)
	}
	if m, err := b.LookupID("id-m1"); err != nil || m.QueueOffset != 1 {
		t.Fatalf("replicated id not indexed: %v %+v", err, m)
	}
}

func TestSyncSendWaitsForFollowerAndCapsReads(t *testing.T) {
	a := dcBroker(t, "idc-a", t.TempDir(), func(c *Config) { c.ReplicaTimeout, c.ISRTimeout = 300*time.Millisecond, 150*time.Millisecond })
	b := dcBroker(t, "idc-b", t.TempDir(), nil)
	setOrder(t, a, 1, "idc-a", "sync", "idc-b")
	setOrder(t, b, 1, "idc-a", "sync", "idc-b")

	// No follower fetching: the send times out, and readers see nothing.
	if _, err := sendOrd(a, 1, "m0"); !errors.Is(err, ErrReplicaTimeout) {
		t.Fatalf("send without follower: %v, want ErrReplicaTimeout", err)
	}
	if res, err := a.Pull(context.Background(), PullRequest{Topic: "ord", Offset: 0}); err != nil || len(res.Messages) != 0 {
		t.Fatalf("unreplicated message readable: %v %d", err, len(res.Messages))
	}

	// A follower loop running: the retry of the same id is acked once the
	// follower holds it, and it is stored once.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			replicateOnce(t, a, b, 50*time.Millisecond)
		}
	}()
	defer func() { cancel(); <-done }()
	// It left the in-sync set meanwhile: sends are refused until it is back.
	waitUntil(t, "idc-b is in sync", func() bool { return a.isr.inSync("ord", "idc-b") })
	res, err := sendOrd(a, 1, "m0", "m1")
	if err != nil {
		t.Fatalf("sync send with follower: %v", err)
	}
	if !res[0].Duplicate || res[1].QueueOffset != 1 {
		t.Fatalf("results %+v", res)
	}
	if got := pullAll(t, a, "ord", 0, 0, 2); got[1] != "m1" {
		t.Fatalf("leader reads %v", got)
	}

	// The follower DC marked down: sends stop waiting for it.
	cancel()
	<-done
	setOrder(t, a, 1, "idc-a", "sync")
	if _, err := sendOrd(a, 1, "m2"); err != nil {
		t.Fatalf("send with no follower required: %v", err)
	}
}

func TestDivergentTailTruncatedAndQuarantined(t *testing.T) {
	dirA := t.TempDir()
	a := dcBroker(t, "idc-a", dirA, nil)
	b := dcBroker(t, "idc-b", t.TempDir(), nil)
	setOrder(t, a, 1, "idc-a", "async", "idc-b")
	setOrder(t, b, 1, "idc-a", "async", "idc-b")
	if _, err := sendOrd(a, 1, "m0", "m1", "m2"); err != nil {
		t.Fatal(err)
	}
	catchUp(t, a, b)
	// A writes a tail B never gets, then B takes over at epoch 2 and writes.
	if _, err := sendOrd(a, 1, "lost3", "lost4"); err != nil {
		t.Fatal(err)
	}
	setOrder(t, b, 2, "idc-b", "async", "idc-a")
	if _, err := sendOrd(b, 2, "b3"); err != nil {
		t.Fatal(err)
	}
	setOrder(t, a, 2, "idc-b", "async", "idc-a")
	if n := catchUp(t, b, a); n != 2 {
		t.Fatalf("truncated %d records, want 2", n)
	}
	want := "m0@0/e1,m1@1/e1,m2@2/e1,b3@3/e2"
	if got := strings.Join(queueBodies(t, a), ","); got != want {
		t.Fatalf("old primary after failback catch-up: %s, want %s", got, want)
	}
	if _, err := a.LookupID("id-lost4"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("quarantined record found by id: %v", err)
	}
	files, _ := os.ReadDir(dirA + "/quarantine")
	if len(files) != 1 {
		t.Fatalf("quarantine files: %v", files)
	}
	f, _ := os.Open(dirA + "/quarantine/" + files[0].Name())
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 || !strings.Contains(lines[1], `"id":"id-lost3"`) || !strings.Contains(lines[2], `"id":"id-lost4"`) {
		t.Fatalf("quarantine file: %q", lines)
	}

	// The cut survives a restart (recovery re-dispatches the commitlog).
	a.Close()
	a2 := dcBroker(t, "idc-a", dirA, nil)
	if got := strings.Join(queueBodies(t, a2), ","); got != want {
		t.Fatalf("after restart: %s, want %s", got, want)
	}
}

func TestLeaseGatesOrderedWrites(t *testing.T) {
	a := dcBroker(t, "idc-a", t.TempDir(), nil)
	setOrder(t, a, 1, "idc-a", "async")
	a.EnableLease(200 * time.Millisecond)
	if _, err := sendOrd(a, 1, "m0"); !errors.Is(err, ErrLeaseExpired) {
		t.Fatalf("before any renewal: %v", err)
	}
	a.RenewLease(time.Now())
	if _, err := sendOrd(a, 1, "m0"); err != nil {
		t.Fatalf("with a fresh lease: %v", err)
	}
	a.leaseUntil.Store(time.Now().Add(-time.Millisecond).UnixNano())
	if _, err := sendOrd(a, 1, "m1"); !errors.Is(err, ErrLeaseExpired) {
		t.Fatalf("after the lease ran out: %v", err)
	}
	// Unordered topics do not depend on the lease.
	mustCreate(t, a, "plain", 1)
	sendN(t, a, "plain", 0, 1)
}

func TestFenceBlocksWritesAndReportsEnds(t *testing.T) {
	a := dcBroker(t, "idc-a", t.TempDir(), nil)
	setOrder(t, a, 1, "idc-a", "async", "idc-b")
	if _, err := sendOrd(a, 1, "m0", "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Fence(context.Background(), "ord", 0); err == nil {
		t.Fatal("fence without epoch accepted")
	}
	st, err := a.Fence(context.Background(), "ord", 2)
	if err != nil || st.Queues[0].NextOffset != 2 || st.Queues[0].LastEpoch != 1 || st.Leader {
		t.Fatalf("fence: %v %+v", err, st)
	}
	if _, err := sendOrd(a, 2, "m2"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("send after fence: %v", err)
	}
	if _, err := sendOrd(a, 1, "m2"); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("send with the old epoch after fence: %v", err)
	}
	if _, err := a.Fence(context.Background(), "ord", 1); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("older fence: %v", err)
	}
	// The controller's next record (primary idc-a again, unblocked) reopens it.
	setOrder(t, a, 3, "idc-a", "async", "idc-b")
	if _, err := sendOrd(a, 3, "m2"); err != nil {
		t.Fatal(err)
	}
}

func TestSyncConsumerOffsetsOnlyRaisesIdleQueues(t *testing.T) {
	b := dcBroker(t, "idc-b", t.TempDir(), nil)
	mustCreate(t, b, "plain", 2)
	if err := b.CommitOffset("g1", "plain", 0, 5); err != nil {
		t.Fatal(err)
	}
	b.popState(popKey{"g2", "plain", 1}) // g2 consumes queue 1 here
	n, err := b.SyncConsumerOffsets([]offsets.Entry{
		{Group: "g1", Topic: "plain", Queue: 0, Offset: 3}, // backwards: ignored
		{Group: "g1", Topic: "plain", Queue: 1, Offset: 7},
		{Group: "g2", Topic: "plain", Queue: 1, Offset: 9}, // consumed here: ignored
	})
	if err != nil || n != 1 {
		t.Fatalf("applied %d, %v; want 1", n, err)
	}
	if off, _ := b.offs.Get("g1", "plain", 0); off != 5 {
		t.Fatalf("moved backwards to %d", off)
	}
	if off, _ := b.offs.Get("g2", "plain", 1); off == 9 {
		t.Fatal("offset of a queue consumed here was overwritten")
	}
	if _, err := b.SyncConsumerOffsets([]offsets.Entry{{Group: "g1", Topic: "nope", Queue: 0, Offset: 1}}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
	es, _ := b.ConsumerOffsets("plain")
	if len(es) != 2 {
		t.Fatalf("listed %v", es)
	}
}
