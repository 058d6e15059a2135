package broker

import (
	"context"
	"sync"
	"testing"
	"time"
)

func sendID(t *testing.T, b *Broker, topic, id string, idempotent bool) SendResult {
	t.Helper()
	res, err := b.Send(context.Background(), SendRequest{Topic: topic, QueueID: -1, Idempotent: idempotent,
		Messages: []Message{{ID: id, Body: []byte(id)}}})
	if err != nil {
		t.Fatalf("send %s: %v", id, err)
	}
	return res[0]
}

func queueLen(t *testing.T, b *Broker, topic string, q uint32) int64 {
	t.Helper()
	waitDispatched(t, b)
	_, hi, err := b.QueueOffsets(topic, q)
	if err != nil {
		t.Fatal(err)
	}
	return hi
}

func TestIdempotentSend(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, testConfig(dir))
	mustCreate(t, b, "t1", 2)
	mustCreate(t, b, "t2", 1)

	first := sendID(t, b, "t1", "a", true)
	again := sendID(t, b, "t1", "a", true)
	if first.Duplicate || !again.Duplicate || again.QueueID != first.QueueID || again.QueueOffset != first.QueueOffset {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	// The scope is the topic: the same id elsewhere is another message.
	if r := sendID(t, b, "t2", "a", true); r.Duplicate {
		t.Fatalf("id of another topic taken for a duplicate: %+v", r)
	}
	// Within one batch, the second copy is a duplicate of the first.
	res, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: 0, Idempotent: true,
		Messages: []Message{{ID: "b", Body: []byte("1")}, {ID: "b", Body: []byte("2")}, {ID: "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || !res[1].Duplicate || res[1].QueueOffset != res[0].QueueOffset || res[2].QueueOffset != res[0].QueueOffset+1 {
		t.Fatalf("batch results %+v", res)
	}
	// Without the flag nothing is checked.
	if r := sendID(t, b, "t1", "a", false); r.Duplicate {
		t.Fatalf("non-idempotent send deduplicated: %+v", r)
	}
	total := queueLen(t, b, "t1", 0) + queueLen(t, b, "t1", 1)
	if total != 4 { // a, b, c, a again (not idempotent)
		t.Fatalf("t1 holds %d messages, want 4", total)
	}

	// After a restart the id index answers.
	b.Close()
	b = openBroker(t, testConfig(dir))
	r := sendID(t, b, "t1", "a", true)
	if !r.Duplicate || r.QueueID != first.QueueID || r.QueueOffset != first.QueueOffset {
		t.Fatalf("after restart: %+v, want the placement of %+v", r, first)
	}
	if r := sendID(t, b, "t1", "b", true); !r.Duplicate || r.QueueOffset != res[0].QueueOffset {
		t.Fatalf("after restart: %+v", r)
	}

	// A topic deleted and created again starts with no ids, cached or indexed.
	sendID(t, b, "t2", "fresh", true)
	for _, topic := range []string{"t1", "t2"} {
		if err := b.DeleteTopic(topic); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, b, topic, 1)
	}
	for _, tc := range []struct{ topic, id string }{{"t1", "a"}, {"t2", "fresh"}} {
		if r := sendID(t, b, tc.topic, tc.id, true); r.Duplicate || r.QueueOffset != 0 {
			t.Fatalf("%s/%s in the recreated topic: %+v", tc.topic, tc.id, r)
		}
	}
}

// TestIdempotentWithoutCache checks the id-index path alone: with no cache
// room, entries leave the cache as soon as they are indexed.
func TestIdempotentWithoutCache(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.IdempotencyCacheSize = 0
	b := openBroker(t, cfg)
	mustCreate(t, b, "t1", 1)
	for i := 0; i < 3; i++ {
		r := sendID(t, b, "t1", "z", true)
		if r.Duplicate != (i > 0) || r.QueueOffset != 0 {
			t.Fatalf("send %d: %+v", i, r)
		}
		waitDispatched(t, b)
		b.appendMu.Lock()
		b.ids.evict(time.Now(), b.dispatched.Load())
		n := len(b.ids.m)
		b.appendMu.Unlock()
		if n != 0 {
			t.Fatalf("cache keeps %d indexed entries with size 0", n)
		}
	}
	if n := queueLen(t, b, "t1", 0); n != 1 {
		t.Fatalf("stored %d times", n)
	}
}

func TestIdempotentConcurrentSameID(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 4)
	const senders = 16
	results := make([]SendResult, senders)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: -1, Idempotent: true,
				Messages: []Message{{ID: "same", Body: []byte("x")}}})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res[0]
		}()
	}
	wg.Wait()
	stored := 0
	for _, r := range results {
		if !r.Duplicate {
			stored++
		}
		if r.QueueID != results[0].QueueID || r.QueueOffset != results[0].QueueOffset {
			t.Fatalf("placements differ: %+v vs %+v", r, results[0])
		}
	}
	var total int64
	for q := uint32(0); q < 4; q++ {
		total += queueLen(t, b, "t1", q)
	}
	if stored != 1 || total != 1 {
		t.Fatalf("%d sends stored, %d messages in the topic; want 1 and 1", stored, total)
	}
}

func TestIDCacheEviction(t *testing.T) {
	c := newIDCache(2, time.Minute)
	now := time.Now()
	for i, k := range []string{"a", "b", "c"} {
		c.put(k, idPlacement{end: int64(10 * (i + 1)), added: now})
	}
	c.evict(now, 5) // nothing indexed yet: nothing may go
	if len(c.m) != 3 {
		t.Fatalf("evicted unindexed entries: %d left", len(c.m))
	}
	c.evict(now, 30)
	if _, ok := c.get("a"); ok || len(c.m) != 2 {
		t.Fatalf("size bound not applied: %v", c.m)
	}
	c.evict(now.Add(2*time.Minute), 30)
	if len(c.m) != 0 {
		t.Fatalf("window not applied: %v", c.m)
	}
}
