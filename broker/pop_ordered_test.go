package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestOrderedPopOneBatchInFlight(t *testing.T) {
	cfg := popConfig(t.TempDir())
	b := openBroker(t, cfg)
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 6)
	const invisible = 200 * time.Millisecond
	req := PopRequest{Group: "g", Topic: "t1", QueueID: 0, Ordered: true, MaxMessages: 2, InitialPosition: InitialEarliest, Invisible: invisible}
	queueLen(t, b, "t1", 0)
	batch := mustPop(t, b, req)
	if got := offsetsOf(batch); fmt.Sprint(got) != "[0 1]" {
		t.Fatalf("first batch %v", got)
	}
	// While the batch is out, nothing else of the queue is handed out.
	req.Wait = 50 * time.Millisecond
	if out := mustPop(t, b, req); len(out) != 0 {
		t.Fatalf("second batch while the first is in flight: %v", offsetsOf(out))
	}
	mustAck(t, b, "g", batch[0])
	if out := mustPop(t, b, req); len(out) != 0 {
		t.Fatalf("popped past an unacked message: %v", offsetsOf(out))
	}
	// Offset 1 expires: after the backoff it comes again, in place, first.
	due := batch[1].InvisibleUntil.Add(cfg.RetryBackoff[0])
	req.Wait = 2 * time.Second
	again := mustPop(t, b, req)
	if early := due.Sub(time.Now()); early > 0 {
		t.Fatalf("redelivered %v before the backoff ended", early)
	}
	if got := offsetsOf(again); fmt.Sprint(got) != "[1 2]" || again[0].Attempt != 2 || again[1].Attempt != 1 {
		t.Fatalf("redelivery %v attempts %d,%d", got, again[0].Attempt, again[1].Attempt)
	}
	if err := b.Ack("g", "t1", batch[1].ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("receipt of the first delivery after redelivery: %v", err)
	}
	for _, p := range again {
		mustAck(t, b, "g", p)
	}
	// An ack of the whole batch wakes a waiting pop at once.
	rest := mustPop(t, b, req)
	if got := offsetsOf(rest); fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("next batch %v", got)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		for _, p := range rest {
			b.Ack("g", "t1", p.ReceiptHandle)
		}
	}()
	start := time.Now()
	last := mustPop(t, b, req)
	if got := offsetsOf(last); fmt.Sprint(got) != "[5]" || time.Since(start) > invisible {
		t.Fatalf("after acks: %v in %v", got, time.Since(start))
	}
	if off, _, _ := b.QueryOffset("g", "t1", 0); off != 5 {
		t.Fatalf("committed %d", off)
	}
}

func TestOrderedDeadLetterMovesOn(t *testing.T) {
	cfg := popConfig(t.TempDir())
	cfg.RetryBackoff = []time.Duration{20 * time.Millisecond}
	b := openBroker(t, cfg)
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 2)
	req := PopRequest{Group: "g", Topic: "t1", QueueID: 0, Ordered: true, MaxMessages: 1, MaxAttempts: 2,
		InitialPosition: InitialEarliest, Invisible: 50 * time.Millisecond, Wait: 2 * time.Second}
	for attempt := 1; attempt <= 2; attempt++ {
		out := mustPop(t, b, req)
		if len(out) != 1 || out[0].Message.QueueOffset != 0 || out[0].Attempt != attempt {
			t.Fatalf("attempt %d: %+v", attempt, out)
		}
	}
	// Out of attempts: offset 0 goes to the dead-letter topic, 1 comes next.
	out := mustPop(t, b, req)
	if len(out) != 1 || out[0].Message.QueueOffset != 1 || out[0].Attempt != 1 {
		t.Fatalf("after the last attempt: %+v", out)
	}
	dlq := pullAll(t, b, "%DLQ%g", 0, 0, 1)
	if dlq[0] != "body-0" {
		t.Fatalf("dead letter %q", dlq[0])
	}
	if _, err := b.Topic("%RETRY%g"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("ordered groups use no retry topic: %v", err)
	}
}

// TestOrderedPopsStrictlyInOrder: several consumers of one ordered queue
// process its messages strictly one batch after the other.
func TestOrderedPopsStrictlyInOrder(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	const n = 60
	sendN(t, b, "t1", 0, n)
	var mu sync.Mutex
	next := int64(0) // the offset every pop must start at
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := next == n
				mu.Unlock()
				if done {
					return
				}
				out, err := b.Pop(context.Background(), PopRequest{Group: "g", Topic: "t1", QueueID: -1, Ordered: true, MaxMessages: 3,
					InitialPosition: InitialEarliest, Invisible: time.Minute, Wait: 20 * time.Millisecond})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, p := range out {
					if p.Message.QueueOffset != next {
						t.Errorf("popped offset %d, expected %d", p.Message.QueueOffset, next)
					}
					next = p.Message.QueueOffset + 1
				}
				mu.Unlock()
				for _, p := range out {
					if err := b.Ack("g", "t1", p.ReceiptHandle); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
}
