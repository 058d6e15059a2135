package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		runCrashChild()
		return
	}
	goleak.VerifyTestMain(m)
}

func TestSendPullRoundTrip(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "orders", 4)
	born := time.Unix(1700000000, 0)
	res, err := b.Send(context.Background(), SendRequest{Topic: "orders", QueueID: 2, Messages: []Message{
		{ID: "id-1", Keys: []string{"a", "b"}, Tag: "T", ShardingKey: "s", Properties: map[string]string{"trace": "x"}, Body: []byte("one"), BornTime: born, BornDC: "idc-b"},
		{Body: []byte("two")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].QueueOffset != 0 || res[1].QueueOffset != 1 || res[0].QueueID != 2 || res[0].ID != "id-1" || res[1].ID == "" {
		t.Fatalf("results %+v", res)
	}
	// A batch becomes readable record by record: wait for the second.
	pullAll(t, b, "orders", 2, 0, 2)
	pr, err := b.Pull(context.Background(), PullRequest{Topic: "orders", QueueID: 2, Offset: 0, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Messages) != 2 || pr.NextOffset != 2 || pr.MaxOffset != 2 || pr.MinOffset != 0 {
		t.Fatalf("pull %+v", pr)
	}
	m := pr.Messages[0]
	if m.ID != "id-1" || m.Topic != "orders" || m.QueueID != 2 || string(m.Body) != "one" || m.Tag != "T" ||
		m.ShardingKey != "s" || m.Properties["trace"] != "x" || m.BornDC != "idc-b" || m.BornTime != born.UnixNano() ||
		len(m.Keys) != 2 || m.StoreTime < born.UnixNano() {
		t.Fatalf("message %+v", m)
	}
	if pr.Messages[1].BornDC != "idc-a" {
		t.Fatalf("born dc defaults to the broker's: %q", pr.Messages[1].BornDC)
	}
}

func TestBadInputRefusedAndNothingWritten(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b := openBroker(t, cfg)
	mustCreate(t, b, "t1", 2)
	big := make([]byte, cfg.MaxMessageBytes+1)
	tests := []struct {
		name string
		req  SendRequest
		want error
	}{
		{"unknown topic", SendRequest{Topic: "nope", Messages: []Message{{Body: []byte("x")}}}, ErrUnknownTopic},
		{"bad name", SendRequest{Topic: "bad name!", Messages: []Message{{Body: []byte("x")}}}, ErrInvalidName},
		{"empty name", SendRequest{Topic: "", Messages: []Message{{Body: []byte("x")}}}, ErrInvalidName},
		{"bad queue", SendRequest{Topic: "t1", QueueID: 2, Messages: []Message{{Body: []byte("x")}}}, ErrInvalidQueue},
		{"empty batch", SendRequest{Topic: "t1"}, ErrInvalidArgument},
		{"oversize in batch", SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{Body: []byte("ok")}, {Body: big}}}, ErrMessageTooLarge},
		{"bad id", SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{ID: "has space", Body: []byte("x")}}}, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Send(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	var tl *TooLargeError
	_, err := b.Send(context.Background(), SendRequest{Topic: "t1", Messages: []Message{{Body: big}}})
	if !errors.As(err, &tl) || tl.Limit != cfg.MaxMessageBytes || !strings.Contains(err.Error(), fmt.Sprint(cfg.MaxMessageBytes)) {
		t.Fatalf("oversize error does not name the limit: %v", err)
	}
	for q := uint32(0); q < 2; q++ {
		if _, hi, _ := b.QueueOffsets("t1", q); hi != 0 {
			t.Fatalf("queue %d has %d messages after refused sends", q, hi)
		}
	}
	if pos := b.Info().MaxPos; pos != 0 {
		t.Fatalf("commitlog grew to %d after refused sends", pos)
	}
}

func TestPullErrors(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 3)
	tests := []struct {
		name string
		req  PullRequest
		want error
	}{
		{"unknown topic", PullRequest{Topic: "nope"}, ErrUnknownTopic},
		{"bad queue", PullRequest{Topic: "t1", QueueID: 1}, ErrInvalidQueue},
		{"offset past max", PullRequest{Topic: "t1", Offset: 4}, ErrOffsetOutOfRange},
		{"negative offset", PullRequest{Topic: "t1", Offset: -1}, ErrOffsetOutOfRange},
		{"too many", PullRequest{Topic: "t1", MaxMessages: MaxPullMessages + 1}, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := b.Pull(context.Background(), tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestPermissions(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 1)
	one := SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{Body: []byte("x")}}}
	if err := b.SetPermission("t1", PermRead); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(context.Background(), one); !errors.Is(err, ErrWriteForbidden) {
		t.Fatalf("read-only topic accepted a write: %v", err)
	}
	pullAll(t, b, "t1", 0, 0, 1)
	if err := b.SetPermission("t1", PermReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPermission("", PermRead); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(context.Background(), one); !errors.Is(err, ErrWriteForbidden) || !strings.Contains(err.Error(), "broker") {
		t.Fatalf("read-only broker accepted a write: %v", err)
	}
	if err := b.SetPermission("", PermWrite); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Pull(context.Background(), PullRequest{Topic: "t1"}); !errors.Is(err, ErrReadForbidden) {
		t.Fatalf("write-only broker served a read: %v", err)
	}
	if err := b.SetPermission("", 9); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad permission accepted: %v", err)
	}
}

func TestLongPollWakesOnSend(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	got := make(chan PullResult, 1)
	go func() {
		res, _ := b.Pull(context.Background(), PullRequest{Topic: "t1", Offset: 0, Wait: 10 * time.Second})
		got <- res
	}()
	time.Sleep(50 * time.Millisecond) // let the pull park (a miss only makes the test weaker, not flaky)
	start := time.Now()
	sendN(t, b, "t1", 0, 1)
	select {
	case res := <-got:
		if len(res.Messages) != 1 {
			t.Fatalf("long poll returned %d messages", len(res.Messages))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("long poll woke after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not wake on a send")
	}
}

func TestLongPollTimesOutEmpty(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	start := time.Now()
	res, err := b.Pull(context.Background(), PullRequest{Topic: "t1", Wait: 150 * time.Millisecond})
	if err != nil || len(res.Messages) != 0 || res.NextOffset != 0 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("returned after %v, before the wait", d)
	}
}

func TestTagFilter(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 9) // tags t0,t1,t2 repeating
	waitDispatched(t, b)
	res, err := b.Pull(context.Background(), PullRequest{Topic: "t1", Tags: []string{"t1"}, MaxMessages: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 3 || res.NextOffset != 9 {
		t.Fatalf("got %d messages next %d", len(res.Messages), res.NextOffset)
	}
	for _, m := range res.Messages {
		if m.Tag != "t1" {
			t.Fatalf("tag %q passed the filter", m.Tag)
		}
	}
}

func TestReopenKeepsMessagesOffsetsAndTopics(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Start(context.Background())
	mustCreate(t, b, "t1", 2)
	sendN(t, b, "t1", 1, 50)
	if err := b.CommitOffset("g1", "t1", 1, 17); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := openBroker(t, cfg)
	bodies := pullAll(t, b2, "t1", 1, 0, 50)
	if bodies[49] != "body-49" {
		t.Fatalf("last body %q", bodies[49])
	}
	if off, ok, err := b2.QueryOffset("g1", "t1", 1); err != nil || !ok || off != 17 {
		t.Fatalf("offset %d %v %v", off, ok, err)
	}
	res := sendN(t, b2, "t1", 1, 1)
	if res[0].QueueOffset != 50 {
		t.Fatalf("offset after reopen %d, want 50", res[0].QueueOffset)
	}
}

func TestRecoveryRebuildsLostQueues(t *testing.T) {
	cfg := testConfig(t.TempDir())
	b, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "t1", 3)
	for q := int32(0); q < 3; q++ {
		sendN(t, b, "t1", q, 40)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Lose every derived file: queues, index and checkpoint.
	for _, p := range []string{"consumequeue", "index", checkpointFile} {
		if err := os.RemoveAll(filepath.Join(cfg.DataDir, p)); err != nil {
			t.Fatal(err)
		}
	}
	b2 := openBroker(t, cfg)
	for q := uint32(0); q < 3; q++ {
		bodies := pullAll(t, b2, "t1", q, 0, 40)
		for i, body := range bodies {
			if body != fmt.Sprintf("body-%d", i) {
				t.Fatalf("queue %d offset %d: %q", q, i, body)
			}
		}
	}
	if _, err := b2.LookupKey("t1", "k3", 100); err != nil {
		t.Fatal(err)
	}
}

func TestLookups(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 2)
	mustCreate(t, b, "t2", 1)
	before := time.Now()
	res := sendN(t, b, "t1", 0, 30)
	mid := time.Now()
	sendN(t, b, "t1", 0, 10)
	sendN(t, b, "t2", 0, 7)
	waitDispatched(t, b)
	m, err := b.LookupID(res[12].ID)
	if err != nil || string(m.Body) != "body-12" {
		t.Fatalf("LookupID: %v %q", err, m.Body)
	}
	if _, err := b.LookupID("no-such-id"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing id: %v", err)
	}
	ms, err := b.LookupKey("t1", "k3", 100)
	if err != nil {
		t.Fatal(err)
	}
	// k3 is on messages i%7==3 of each 30 and 10 run: 3,10,17,24 and 3.
	if len(ms) != 5 {
		t.Fatalf("LookupKey k3 on t1: %d messages, want 5", len(ms))
	}
	for _, m := range ms {
		if m.Topic != "t1" {
			t.Fatalf("key lookup leaked topic %q", m.Topic)
		}
	}
	if off, err := b.OffsetForTime("t1", 0, before); err != nil || off != 0 {
		t.Fatalf("OffsetForTime(before) = %d, %v", off, err)
	}
	if off, err := b.OffsetForTime("t1", 0, mid); err != nil || off != 30 {
		t.Fatalf("OffsetForTime(mid) = %d, %v; want 30", off, err)
	}
	if off, err := b.OffsetForTime("t1", 0, time.Now().Add(time.Hour)); err != nil || off != 40 {
		t.Fatalf("OffsetForTime(future) = %d, %v; want 40", off, err)
	}
}

// waitDispatched waits until every appended record is in its queue.
func waitDispatched(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		wake := b.waitDispatch() // taken before the check, so no advance is missed
		if b.dispatched.Load() >= b.clog.WrittenPos() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("dispatcher did not catch up")
		}
		select {
		case <-wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestRetentionMovesMinOffset(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SegmentBytes = 96 << 10
	cfg.MaxMessageBytes = 16 << 10
	cfg.RetentionBytes = 200 << 10
	b := openBroker(t, cfg)
	mustCreate(t, b, "t1", 1)
	body := make([]byte, 4<<10)
	for i := 0; i < 200; i++ {
		if _, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{Body: body}}}); err != nil {
			t.Fatal(err)
		}
	}
	waitDispatched(t, b)
	if err := b.RunRetention(); err != nil {
		t.Fatal(err)
	}
	lo, hi, _ := b.QueueOffsets("t1", 0)
	if lo == 0 || hi != 200 {
		t.Fatalf("after retention min %d max %d; want min > 0, max 200", lo, hi)
	}
	if _, err := b.Pull(context.Background(), PullRequest{Topic: "t1", Offset: lo - 1}); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("pull below min: %v", err)
	}
	res, err := b.Pull(context.Background(), PullRequest{Topic: "t1", Offset: lo})
	if err != nil || len(res.Messages) == 0 || res.Messages[0].QueueOffset != lo {
		t.Fatalf("pull at min: %v", err)
	}
	if d := b.clog.Metrics().DiskBytes; d > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("disk %d over budget %d + one segment", d, cfg.RetentionBytes)
	}
}

func TestTopicAdmin(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 2)
	if _, err := b.CreateTopic(TopicConfig{Name: "t1", Queues: 2}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	for _, bad := range []TopicConfig{{Name: "x", Queues: 0}, {Name: "x", Queues: MaxQueues + 1}, {Name: "b@d", Queues: 1}} {
		if _, err := b.CreateTopic(bad); err == nil {
			t.Fatalf("bad topic %+v accepted", bad)
		}
	}
	if _, err := b.UpdateTopic(TopicConfig{Name: "t1", Queues: 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("shrinking queues: %v", err)
	}
	if _, err := b.UpdateTopic(TopicConfig{Name: "t1", Queues: 4, Perm: PermReadWrite}); err != nil {
		t.Fatal(err)
	}
	sendN(t, b, "t1", 3, 2)
	if err := b.CommitOffset("g", "t1", 3, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteTopic("t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Topic("t1"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("deleted topic still there: %v", err)
	}
	mustCreate(t, b, "t1", 4)
	if _, hi, _ := b.QueueOffsets("t1", 3); hi != 0 {
		t.Fatalf("recreated topic kept %d messages", hi)
	}
	if _, ok, _ := b.QueryOffset("g", "t1", 3); ok {
		t.Fatal("recreated topic kept the old consumer offset")
	}
}
