package broker

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/offsets"
)

func at(t time.Time) map[string]string {
	return map[string]string{PropDeliverAt: strconv.FormatInt(t.UnixNano(), 10)}
}

func sendAt(t *testing.T, b *Broker, topic, id string, due time.Time, epoch uint64) SendResult {
	t.Helper()
	res, err := b.Send(context.Background(), SendRequest{Topic: topic, QueueID: 0, Epoch: epoch,
		Messages: []Message{{ID: id, Body: []byte(id), Properties: at(due)}}})
	if err != nil {
		t.Fatalf("send %s: %v", id, err)
	}
	return res[0]
}

// arrivals long-polls a queue and reports each message's id and arrival time.
func arrivals(t *testing.T, b *Broker, topic string, n int, within time.Duration) map[string]time.Time {
	t.Helper()
	got := map[string]time.Time{}
	off := int64(0)
	deadline := time.Now().Add(within)
	for len(got) < n && time.Now().Before(deadline) {
		res, err := b.Pull(context.Background(), PullRequest{Topic: topic, Offset: off, Wait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for _, m := range res.Messages {
			if _, dup := got[m.ID]; dup {
				t.Fatalf("message %s delivered twice", m.ID)
			}
			got[m.ID] = now
		}
		off = res.NextOffset
	}
	if len(got) != n {
		t.Fatalf("%d of %d delayed messages arrived", len(got), n)
	}
	return got
}

// TestDelayAccuracy measures the scheduler, so it runs under async flush:
// under sync flush every hop and the delivery also wait for an fsync, whose
// latency is the disk's (TestDelaySurvivesRestart runs under sync flush).
func TestDelayAccuracy(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.FlushMode = FlushAsync
	b := openBroker(t, cfg)
	mustCreate(t, b, "d", 1)
	if err := b.SetTopicEpoch("d", 2); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	due := map[string]time.Time{
		"short": now.Add(300 * time.Millisecond), "long": now.Add(1500 * time.Millisecond),
		// Both in the smallest level; the second, stored later but due
		// first, is not held back by the first.
		"late-in-level": now.Add(190 * time.Millisecond), "early-in-level": now.Add(80 * time.Millisecond),
	}
	for _, id := range []string{"short", "long", "late-in-level", "early-in-level"} {
		r := sendAt(t, b, "d", id, due[id], 2)
		if r.Topic != ScheduleTopic {
			t.Fatalf("result of a delayed send %+v", r)
		}
	}
	if n := queueLen(t, b, "d", 0); n > 1 {
		t.Fatalf("%d delayed messages stored in the topic at once", n)
	}
	got := arrivals(t, b, "d", len(due), 3*time.Second)
	for id, d := range due {
		if off := got[id].Sub(d); off < -150*time.Millisecond || off > 150*time.Millisecond {
			t.Errorf("%s arrived %v from its due time", id, off)
		} else {
			t.Logf("%s arrived %v from its due time", id, off)
		}
	}
	pr, err := b.Pull(context.Background(), PullRequest{Topic: "d"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pr.Messages {
		if m.Epoch != 2 || m.Properties[PropRealTopic] != "" || m.Properties[PropDeliverAt] == "" {
			t.Fatalf("delivered %+v", m)
		}
	}
	if _, err := b.Topic(ScheduleTopic); err != nil {
		t.Fatal(err)
	}
	for _, tc := range b.Topics() {
		if tc.Name == ScheduleTopic {
			t.Fatal("the schedule topic is listed")
		}
	}
}

func TestDelaySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, testConfig(dir))
	mustCreate(t, b, "d", 1)
	due := time.Now().Add(1200 * time.Millisecond)
	sendAt(t, b, "d", "m1", due, 0)
	time.Sleep(100 * time.Millisecond)
	b.Close()

	b = openBroker(t, testConfig(dir))
	got := arrivals(t, b, "d", 1, 3*time.Second)
	if off := got["m1"].Sub(due); off < -150*time.Millisecond || off > time.Second {
		t.Errorf("arrived %v from its due time after a restart", off)
	}
	waitSchedulerIdle(t, b)
	b.Close()

	// A crash after a delivery but before the scheduler's offsets reached
	// the disk replays the schedule: the message is still stored once.
	s, err := offsets.Open(filepath.Join(dir, "offsets.json"))
	if err != nil {
		t.Fatal(err)
	}
	for l := range DelayLevels {
		s.Commit(SchedulerGroup, ScheduleTopic, uint32(l), 0)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b = openBroker(t, testConfig(dir))
	waitSchedulerIdle(t, b)
	if n := queueLen(t, b, "d", 0); n != 1 {
		t.Fatalf("delayed message stored %d times", n)
	}
}

// waitSchedulerIdle waits until every delay level has handled its records.
func waitSchedulerIdle(t *testing.T, b *Broker) {
	t.Helper()
	waitDispatched(t, b)
	deadline := time.Now().Add(5 * time.Second)
	for l := range DelayLevels {
		for {
			_, hi, err := b.QueueOffsets(ScheduleTopic, uint32(l))
			if err != nil {
				t.Fatal(err)
			}
			if off, _ := b.offs.Get(SchedulerGroup, ScheduleTopic, uint32(l)); off >= hi {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("level %v did not catch up", DelayLevels[l])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestDelayedSendErrors(t *testing.T) {
	b := openBroker(t, testConfig(t.TempDir()))
	mustCreate(t, b, "d", 1)
	send := func(topic string, props map[string]string) error {
		_, err := b.Send(context.Background(), SendRequest{Topic: topic, QueueID: -1, Messages: []Message{{Body: []byte("x"), Properties: props}}})
		return err
	}
	tests := []struct {
		name  string
		topic string
		props map[string]string
		want  error
	}{
		{"not a number", "d", map[string]string{PropDeliverAt: "soon"}, ErrInvalidArgument},
		{"beyond max-delay", "d", at(time.Now().Add(73 * time.Hour)), ErrInvalidArgument},
		{"to the schedule topic", ScheduleTopic, nil, ErrInvalidArgument},
		{"in the past: delivered at once", "d", at(time.Now().Add(-time.Second)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := send(tt.topic, tt.props); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if n := queueLen(t, b, "d", 0); n != 1 {
		t.Fatalf("topic holds %d messages, want the one due in the past", n)
	}
	if err := b.DeleteTopic(ScheduleTopic); err == nil {
		t.Fatal("deleted the schedule topic")
	}
}

func TestLevelFor(t *testing.T) {
	tests := []struct {
		remaining time.Duration
		want      time.Duration
	}{
		{0, 100 * time.Millisecond},
		{50 * time.Millisecond, 100 * time.Millisecond},
		{999 * time.Millisecond, 100 * time.Millisecond},
		{time.Second, time.Second},
		{4 * time.Minute, 4 * time.Minute},
		{59 * time.Minute, 30 * time.Minute},
		{72 * time.Hour, 2 * time.Hour},
	}
	for _, tt := range tests {
		if got := DelayLevels[levelFor(tt.remaining)]; got != tt.want {
			t.Errorf("levelFor(%v) = %v, want %v", tt.remaining, got, tt.want)
		}
	}
}

func TestDueTime(t *testing.T) {
	store := time.Unix(1000, 0)
	rec := func(deliver time.Duration) *commitlog.Message {
		return &commitlog.Message{StoreTime: store.UnixNano(), Properties: at(store.Add(deliver))}
	}
	tests := []struct {
		name  string
		m     *commitlog.Message
		level int
		now   time.Duration // after store
		want  time.Duration // after store
	}{
		{"short delay in level 0: its deliver time", rec(50 * time.Millisecond), 0, 0, 50 * time.Millisecond},
		{"within the smallest level of the hop", rec(1050 * time.Millisecond), 1, 0, 1050 * time.Millisecond},
		{"more to go: the hop time", rec(1500 * time.Millisecond), 1, 0, time.Second},
		{"hop handled late, little left: deliver time", rec(1500 * time.Millisecond), 1, 1450 * time.Millisecond, 1500 * time.Millisecond},
		{"malformed: the hop time", &commitlog.Message{StoreTime: store.UnixNano(), Properties: map[string]string{PropDeliverAt: "x"}}, 0, 0, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dueTime(tt.m, tt.level, store.Add(tt.now)).Sub(store); got != tt.want {
				t.Fatalf("due %v after store, want %v", got, tt.want)
			}
		})
	}
}

// A broker demoted to a standby of its replica set holds the delayed
// messages it stored as leader: appending them would put records of its
// own into a copy of its new leader's queue. They are delivered once it
// leads again, others of the level meanwhile.
func TestScheduledDeliveryHeldWhileStandby(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.FlushMode = FlushAsync
	b := openBroker(t, cfg)
	mustCreate(t, b, "held", 1)
	mustCreate(t, b, "free", 1)
	lead := Order{Replication: "async", Term: 1, SetWrites: true}
	if err := b.SetTopicOrder("held", 0, lead); err != nil {
		t.Fatal(err)
	}
	sendAt(t, b, "held", "h", time.Now().Add(150*time.Millisecond), 0)
	if err := b.SetTopicOrder("held", 0, Order{Replication: "async", Term: 2, Standby: true}); err != nil {
		t.Fatal(err)
	}
	sendAt(t, b, "free", "f", time.Now().Add(200*time.Millisecond), 0)
	arrivals(t, b, "free", 1, 3*time.Second) // the level goes on past the held one
	if n := queueLen(t, b, "held", 0); n != 0 {
		t.Fatalf("a standby appended %d scheduled records to its copy", n)
	}
	if err := b.SetTopicOrder("held", 0, Order{Replication: "async", Term: 3, SetWrites: true}); err != nil {
		t.Fatal(err)
	}
	got := arrivals(t, b, "held", 1, 3*time.Second)
	if _, ok := got["h"]; !ok {
		t.Fatalf("held message not delivered once leading: %v", got)
	}
}
