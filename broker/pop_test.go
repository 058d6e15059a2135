package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// popConfig has short retry backoffs and a fast reviver.
func popConfig(dir string) Config {
	c := testConfig(dir)
	c.RetryBackoff = []time.Duration{150 * time.Millisecond, 250 * time.Millisecond}
	c.PopReviveInterval = 10 * time.Millisecond
	return c
}

func mustPop(t *testing.T, b *Broker, req PopRequest) []PoppedMessage {
	t.Helper()
	out, err := b.Pop(context.Background(), req)
	if err != nil {
		t.Fatalf("Pop(%s/%s): %v", req.Group, req.Topic, err)
	}
	return out
}

// popN pops until n messages arrived or 5 s passed.
func popN(t *testing.T, b *Broker, req PopRequest, n int) []PoppedMessage {
	t.Helper()
	var out []PoppedMessage
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		req.Wait = 200 * time.Millisecond
		req.MaxMessages = n - len(out)
		out = append(out, mustPop(t, b, req)...)
	}
	if len(out) != n {
		t.Fatalf("popped %d messages of %s, want %d", len(out), req.Topic, n)
	}
	return out
}

func mustAck(t *testing.T, b *Broker, group string, p PoppedMessage) {
	t.Helper()
	if err := b.Ack(group, p.Message.Topic, p.ReceiptHandle); err != nil {
		t.Fatalf("Ack %s@%d: %v", p.Message.Topic, p.Message.QueueOffset, err)
	}
}

func offsetsOf(ps []PoppedMessage) []int64 {
	var out []int64
	for _, p := range ps {
		out = append(out, p.Message.QueueOffset)
	}
	return out
}

func TestPopAckBasics(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 5)
	req := PopRequest{Group: "g", Topic: "t1", QueueID: 0, InitialPosition: InitialEarliest, Invisible: time.Minute}
	first := popN(t, b, PopRequest{Group: "g", Topic: "t1", QueueID: 0, InitialPosition: InitialEarliest, Invisible: time.Minute}, 3)
	if got := offsetsOf(first); fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("offsets %v", got)
	}
	for _, p := range first {
		if p.Attempt != 1 || p.ReceiptHandle == "" || time.Until(p.InvisibleUntil) < 50*time.Second {
			t.Fatalf("popped %+v", p)
		}
	}
	// In flight messages are not handed out again.
	rest := popN(t, b, req, 2)
	if got := offsetsOf(rest); fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("second pop offsets %v", got)
	}
	if out := mustPop(t, b, PopRequest{Group: "g", Topic: "t1", QueueID: 0}); len(out) != 0 {
		t.Fatalf("popped in-flight messages again: %v", offsetsOf(out))
	}
	// The committed offset moves over the contiguous acked prefix only.
	committed := func() int64 {
		off, _, err := b.QueryOffset("g", "t1", 0)
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	mustAck(t, b, "g", first[1])
	if c := committed(); c != 0 {
		t.Fatalf("committed %d after acking offset 1 only", c)
	}
	mustAck(t, b, "g", first[0])
	if c := committed(); c != 2 {
		t.Fatalf("committed %d after acking 0 and 1", c)
	}
	for _, p := range append(first[2:], rest...) {
		mustAck(t, b, "g", p)
	}
	if c := committed(); c != 5 {
		t.Fatalf("committed %d after acking everything", c)
	}
	// Another group has its own position.
	if got := popN(t, b, PopRequest{Group: "other", Topic: "t1", QueueID: -1, InitialPosition: InitialEarliest}, 5); len(got) != 5 {
		t.Fatal("other group")
	}
	// Long polling wakes on a new message.
	go func() {
		time.Sleep(100 * time.Millisecond)
		sendN(t, b, "t1", 0, 1)
	}()
	start := time.Now()
	out := mustPop(t, b, PopRequest{Group: "g", Topic: "t1", QueueID: 0, Wait: 3 * time.Second})
	if len(out) != 1 || out[0].Message.QueueOffset != 5 || time.Since(start) > 2*time.Second {
		t.Fatalf("long poll: %v after %v", offsetsOf(out), time.Since(start))
	}
}

func TestPopTagFilterSettlesOthers(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 6) // tags t0 t1 t2 t0 t1 t2
	queueLen(t, b, "t1", 0)
	out := popN(t, b, PopRequest{Group: "g", Topic: "t1", QueueID: 0, Tags: []string{"t1"}, InitialPosition: InitialEarliest}, 2)
	if got := offsetsOf(out); fmt.Sprint(got) != "[1 4]" {
		t.Fatalf("offsets %v", got)
	}
	for _, p := range out {
		mustAck(t, b, "g", p)
	}
	if out := mustPop(t, b, PopRequest{Group: "g", Topic: "t1", QueueID: 0, Tags: []string{"t1"}}); len(out) != 0 {
		t.Fatalf("popped %v", offsetsOf(out))
	}
	if off, _, _ := b.QueryOffset("g", "t1", 0); off != 6 {
		t.Fatalf("committed %d, want 6 (filtered messages are settled)", off)
	}
}

func TestPopInitialPositions(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	var stored []SendResult
	for i := 0; i < 4; i++ {
		stored = append(stored, sendN(t, b, "t1", 0, 1)...)
		time.Sleep(3 * time.Millisecond)
	}
	waitDispatched(t, b)
	tests := []struct {
		name  string
		req   PopRequest
		first int64 // -1: the end of the queue
	}{
		{"latest", PopRequest{InitialPosition: InitialLatest}, -1},
		{"earliest", PopRequest{InitialPosition: InitialEarliest}, 0},
		{"timestamp", PopRequest{InitialPosition: InitialTimestamp, InitialTime: stored[2].StoreTime}, 2},
		{"timestamp before all", PopRequest{InitialPosition: InitialTimestamp, InitialTime: time.Unix(0, 0)}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := queueLen(t, b, "t1", 0)
			first := tt.first
			if first < 0 {
				first = end
			}
			req := tt.req
			req.Group, req.Topic, req.QueueID = "g"+strconv.Itoa(i), "t1", 0
			out := mustPop(t, b, req)
			if len(out) != int(end-first) || len(out) > 0 && out[0].Message.QueueOffset != first {
				t.Fatalf("popped %v, want %d to %d", offsetsOf(out), first, end-1)
			}
			// The start is recorded: a later pop (any position) continues.
			sendN(t, b, "t1", 0, 1)
			req.InitialPosition, req.Wait = InitialLatest, time.Second
			next := mustPop(t, b, req)
			if len(next) != 1 || next[0].Message.QueueOffset != end {
				t.Fatalf("next pop %v, want [%d]", offsetsOf(next), end)
			}
		})
	}
}

func TestPopErrors(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 2)
	mustCreate(t, b, "closed", 1)
	if err := b.SetPermission("closed", PermWrite); err != nil {
		t.Fatal(err)
	}
	sendN(t, b, "t1", 0, 3)
	ok := PopRequest{Group: "g", Topic: "t1", QueueID: 0, InitialPosition: InitialEarliest, Invisible: time.Minute}
	with := func(f func(*PopRequest)) PopRequest { r := ok; f(&r); return r }
	pops := []struct {
		name string
		req  PopRequest
		want error
	}{
		{"empty group", with(func(r *PopRequest) { r.Group = "" }), ErrInvalidName},
		{"bad group", with(func(r *PopRequest) { r.Group = "a b" }), ErrInvalidName},
		{"bad topic", with(func(r *PopRequest) { r.Topic = "a/b" }), ErrInvalidName},
		{"unknown topic", with(func(r *PopRequest) { r.Topic = "nope" }), ErrUnknownTopic},
		{"queue out of range", with(func(r *PopRequest) { r.QueueID = 2 }), ErrInvalidQueue},
		{"queue below -1", with(func(r *PopRequest) { r.QueueID = -2 }), ErrInvalidArgument},
		{"too many messages", with(func(r *PopRequest) { r.MaxMessages = MaxPullMessages + 1 }), ErrInvalidArgument},
		{"negative invisible", with(func(r *PopRequest) { r.Invisible = -time.Second }), ErrInvalidArgument},
		{"invisible too long", with(func(r *PopRequest) { r.Invisible = MaxInvisible + time.Second }), ErrInvalidArgument},
		{"negative wait", with(func(r *PopRequest) { r.Wait = -1 }), ErrInvalidArgument},
		{"negative attempts", with(func(r *PopRequest) { r.MaxAttempts = -1 }), ErrInvalidArgument},
		{"bad initial position", with(func(r *PopRequest) { r.InitialPosition = 7 }), ErrInvalidArgument},
		{"schedule topic", with(func(r *PopRequest) { r.Topic = ScheduleTopic }), ErrInvalidArgument},
		{"read forbidden", with(func(r *PopRequest) { r.Topic = "closed" }), ErrReadForbidden},
	}
	for _, tt := range pops {
		t.Run("pop "+tt.name, func(t *testing.T) {
			if _, err := b.Pop(context.Background(), tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	queueLen(t, b, "t1", 0)
	popped := mustPop(t, b, with(func(r *PopRequest) { r.MaxMessages = 3 }))
	if len(popped) != 3 {
		t.Fatalf("popped %d", len(popped))
	}
	h0, h1, h2 := popped[0].ReceiptHandle, popped[1].ReceiptHandle, popped[2].ReceiptHandle
	if err := b.Ack("g", "t1", h0); err != nil {
		t.Fatal(err)
	}
	newH1, err := b.ChangeInvisibleDuration("g", "t1", h1, time.Minute)
	if err != nil || newH1 == h1 {
		t.Fatalf("ChangeInvisibleDuration: %q, %v", newH1, err)
	}
	foreign := receipt{broker: "broker-x", topic: "t1", queue: 0, offset: 2, gen: 1}.String()
	unknownQueue := receipt{broker: b.Name(), topic: "t1", queue: 9, offset: 2, gen: 1}.String()
	acks := []struct {
		name, group, topic, handle string
		want                       error
	}{
		{"acked twice", "g", "t1", h0, ErrStaleReceipt},
		{"receipt replaced by ChangeInvisibleDuration", "g", "t1", h1, ErrStaleReceipt},
		{"other group", "g2", "t1", h2, ErrStaleReceipt},
		{"malformed", "g", "t1", "not a receipt!", ErrInvalidArgument},
		{"empty", "g", "t1", "", ErrInvalidArgument},
		{"other broker", "g", "t1", foreign, ErrInvalidArgument},
		{"other topic", "g", "closed", h2, ErrInvalidArgument},
		{"unknown queue", "g", "t1", unknownQueue, ErrInvalidQueue},
		{"bad group", "", "t1", h2, ErrInvalidName},
	}
	for _, tt := range acks {
		t.Run("ack "+tt.name, func(t *testing.T) {
			err := b.Ack(tt.group, tt.topic, tt.handle)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Ack err = %v, want %v", err, tt.want)
			}
			if _, err := b.ChangeInvisibleDuration(tt.group, tt.topic, tt.handle, time.Minute); !errors.Is(err, tt.want) {
				t.Fatalf("ChangeInvisibleDuration err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := b.ChangeInvisibleDuration("g", "t1", h2, -time.Second); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative duration: %v", err)
	}
	if err := b.Ack("g", "t1", newH1); err != nil {
		t.Fatalf("ack with the new handle: %v", err)
	}
	if err := b.Ack("g", "t1", h2); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

// TestPopRetryAndDeadLetter follows one message that is never acked: its
// copies reach the retry topic after the backoff, with growing attempts,
// and the dead-letter topic after the last attempt.
func TestPopRetryAndDeadLetter(t *testing.T) {
	cfg := popConfig(t.TempDir())
	b := openBroker(t, cfg)
	mustCreate(t, b, "t1", 1)
	orig := sendN(t, b, "t1", 0, 1)[0]
	const invisible = 100 * time.Millisecond
	req := PopRequest{Group: "g", Topic: "t1", QueueID: -1, InitialPosition: InitialEarliest, Invisible: invisible, MaxAttempts: 3}
	p := popN(t, b, req, 1)[0]
	if p.Attempt != 1 {
		t.Fatalf("attempt %d", p.Attempt)
	}
	retry := req
	retry.Topic = "%RETRY%g"
	for attempt := 2; attempt <= 3; attempt++ {
		due := p.InvisibleUntil.Add(cfg.RetryBackoff[min(attempt-2, len(cfg.RetryBackoff)-1)])
		next := popN(t, b, retry, 1)[0]
		if early := due.Sub(time.Now()); early > 0 {
			t.Fatalf("attempt %d arrived %v before its backoff ended", attempt, early)
		}
		m := next.Message
		if next.Attempt != attempt || m.ID != orig.ID+":"+strconv.Itoa(attempt) || m.Topic != "%RETRY%g" ||
			m.Properties[PropOriginTopic] != "t1" || m.Properties[PropOriginID] != orig.ID ||
			m.Properties[PropOriginQueue] != "0" || m.Properties[PropOriginOffset] != "0" ||
			m.Properties[PropReconsumeTimes] != strconv.Itoa(attempt-1) || string(m.Body) != "body-0" {
			t.Fatalf("attempt %d: %+v %+v", attempt, next, m.Properties)
		}
		p = next
	}
	// The original was settled by its first revival.
	if off, _, _ := b.QueryOffset("g", "t1", 0); off != 1 {
		t.Fatalf("original not settled: committed %d", off)
	}
	// After the third delivery expires, the copy goes to the dead-letter topic.
	var dlq PullResult
	deadline := time.Now().Add(5 * time.Second)
	for len(dlq.Messages) == 0 && time.Now().Before(deadline) {
		var err error
		dlq, err = b.Pull(context.Background(), PullRequest{Topic: "%DLQ%g", Wait: 100 * time.Millisecond})
		if err != nil && !errors.Is(err, ErrUnknownTopic) {
			t.Fatal(err)
		}
		if errors.Is(err, ErrUnknownTopic) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(dlq.Messages) != 1 || dlq.Messages[0].Properties[PropReconsumeTimes] != "3" || dlq.Messages[0].Properties[PropOriginID] != orig.ID {
		t.Fatalf("dead letters %+v", dlq.Messages)
	}
	time.Sleep(3 * invisible)
	if out := mustPop(t, b, retry); len(out) != 0 {
		t.Fatalf("delivered after the dead-letter topic: %+v", out)
	}
	if off, _, _ := b.QueryOffset("g", "%RETRY%g", 0); off != 2 {
		t.Fatalf("retry topic committed %d, want 2", off)
	}
}

// TestNackRedeliversAtOnce: ChangeInvisibleDuration(0) skips the backoff.
func TestNackRedeliversAtOnce(t *testing.T) {
	cfg := popConfig(t.TempDir())
	cfg.RetryBackoff = []time.Duration{time.Hour}
	b := openBroker(t, cfg)
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 1)
	p := popN(t, b, PopRequest{Group: "g", Topic: "t1", QueueID: 0, InitialPosition: InitialEarliest}, 1)[0]
	if _, err := b.ChangeInvisibleDuration("g", "t1", p.ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	again := popN(t, b, PopRequest{Group: "g", Topic: "%RETRY%g", QueueID: 0}, 1)[0]
	if again.Attempt != 2 {
		t.Fatalf("attempt %d", again.Attempt)
	}
	if err := b.Ack("g", "t1", p.ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("ack after the nack: %v", err)
	}
}

// TestPopAtLeastOnceAcrossRestart: in-flight state is lost on restart, and
// everything after the committed offset is popped again.
func TestPopAtLeastOnceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, popConfig(dir))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 4)
	req := PopRequest{Group: "g", Topic: "t1", QueueID: 0, InitialPosition: InitialEarliest, Invisible: time.Minute}
	out := popN(t, b, req, 4)
	mustAck(t, b, "g", out[0])
	mustAck(t, b, "g", out[2])
	b.Close()

	b = openBroker(t, popConfig(dir))
	if err := b.Ack("g", "t1", out[1].ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("receipt from before the restart: %v", err)
	}
	again := popN(t, b, req, 3)
	if got := offsetsOf(again); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("after restart popped %v, want [1 2 3]", got)
	}
	for _, p := range again {
		mustAck(t, b, "g", p)
	}
	b.Close()
	b = openBroker(t, popConfig(dir))
	if out := mustPop(t, b, PopRequest{Group: "g", Topic: "t1", QueueID: 0, Wait: 100 * time.Millisecond}); len(out) != 0 {
		t.Fatalf("acked messages popped again: %v", offsetsOf(out))
	}
}

// TestCommitOffsetResetsPop: an operator's offset reset applies to pops.
func TestCommitOffsetResetsPop(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 5)
	req := PopRequest{Group: "g", Topic: "t1", QueueID: 0, InitialPosition: InitialEarliest, Invisible: time.Minute}
	out := popN(t, b, req, 2)
	if err := b.CommitOffset("g", "t1", 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack("g", "t1", out[0].ReceiptHandle); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("ack after a reset: %v", err)
	}
	if got := offsetsOf(popN(t, b, req, 1)); got[0] != 4 {
		t.Fatalf("after reset popped %v", got)
	}
}

// TestConcurrentPopsNeverShareAMessage pops from several goroutines; every
// message is handed out exactly once while invisible.
func TestConcurrentPopsNeverShareAMessage(t *testing.T) {
	b := openBroker(t, popConfig(t.TempDir()))
	mustCreate(t, b, "t1", 4)
	const perQueue = 50
	for q := int32(0); q < 4; q++ {
		sendN(t, b, "t1", q, perQueue)
	}
	var mu sync.Mutex
	seen := map[[2]int64]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			empty := 0
			for empty < 3 {
				out, err := b.Pop(context.Background(), PopRequest{Group: "g", Topic: "t1", QueueID: -1, MaxMessages: 7,
					InitialPosition: InitialEarliest, Invisible: time.Minute, Wait: 50 * time.Millisecond})
				if err != nil {
					t.Error(err)
					return
				}
				if len(out) == 0 {
					empty++
				}
				for _, p := range out {
					mu.Lock()
					seen[[2]int64{int64(p.Message.QueueID), p.Message.QueueOffset}]++
					mu.Unlock()
					if len(out)%2 == 0 {
						if err := b.Ack("g", "t1", p.ReceiptHandle); err != nil {
							t.Error(err)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != 4*perQueue {
		t.Fatalf("%d distinct messages popped, want %d", len(seen), 4*perQueue)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("message %v popped %d times", k, n)
		}
	}
}

// A pop whose caller gave up before the reply hands its messages back:
// the next pop gets them at once instead of after the invisibility.
func TestPopOfCancelledCallerHandsMessagesBack(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "t1", 1)
	sendN(t, b, "t1", 0, 1)
	pullAll(t, b, "t1", 0, 0, 1) // dispatched
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := PopRequest{Group: "g", Topic: "t1", QueueID: 0, InitialPosition: InitialEarliest, Invisible: time.Hour, Ordered: true, MaxMessages: 1}
	if out, err := b.Pop(ctx, req); err == nil || len(out) != 0 {
		t.Fatalf("pop of a cancelled caller: %d messages, %v", len(out), err)
	}
	req.Wait = 2 * time.Second
	out, err := b.Pop(context.Background(), req)
	if err != nil || len(out) != 1 {
		t.Fatalf("the message did not come back: %d, %v", len(out), err)
	}
}
