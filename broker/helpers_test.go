package broker

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// testConfig is a small, fast broker configuration in dir.
func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Name = "broker-t"
	c.DataDir = dir
	c.SegmentBytes = 256 << 10
	c.MaxMessageBytes = 64 << 10
	c.QueueEntriesPerFile = 64
	c.IndexSlots = 64
	c.IndexEntriesPerFile = 256
	c.CheckpointInterval = 50 * time.Millisecond
	c.RetentionCheckInterval = time.Hour
	c.RetentionAge = 0
	return c
}

// openBroker opens and starts a broker; it is closed at test end.
func openBroker(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Start(ctx)
	t.Cleanup(func() { cancel(); b.Close() })
	return b
}

func mustCreate(t *testing.T, b *Broker, name string, queues uint32) {
	t.Helper()
	if _, err := b.CreateTopic(TopicConfig{Name: name, Queues: queues}); err != nil {
		t.Fatalf("CreateTopic(%s): %v", name, err)
	}
}

func sendN(t *testing.T, b *Broker, topic string, queue int32, n int) []SendResult {
	t.Helper()
	var out []SendResult
	for i := 0; i < n; i++ {
		res, err := b.Send(context.Background(), SendRequest{Topic: topic, QueueID: queue, Messages: []Message{{
			Keys: []string{fmt.Sprintf("k%d", i%7)}, Tag: fmt.Sprintf("t%d", i%3), Body: fmt.Appendf(nil, "body-%d", i),
		}}})
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		out = append(out, res...)
	}
	return out
}

// pullAll reads a queue from offset until n messages arrived or 5 s passed.
func pullAll(t *testing.T, b *Broker, topic string, queue uint32, from int64, n int) []string {
	t.Helper()
	var bodies []string
	off := from
	deadline := time.Now().Add(5 * time.Second)
	for len(bodies) < n && time.Now().Before(deadline) {
		res, err := b.Pull(context.Background(), PullRequest{Topic: topic, QueueID: queue, Offset: off, Wait: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("Pull %s/%d@%d: %v", topic, queue, off, err)
		}
		for _, m := range res.Messages {
			bodies = append(bodies, string(m.Body))
		}
		off = res.NextOffset
	}
	if len(bodies) != n {
		t.Fatalf("pulled %d messages, want %d", len(bodies), n)
	}
	return bodies
}
