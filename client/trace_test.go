package client

import (
	"strings"
	"testing"
	"time"
)

func at(ms int) time.Time { return time.Unix(1700000000, int64(ms)*int64(time.Millisecond)) }

// tracedMessage: stored in idc-a, replicated to idc-b; billing acked it in
// idc-a (offset synced to idc-b), audit dead-lettered it after a retry,
// idle never read the queue.
func tracedMessage() MessageTrace {
	orig := TracedRecord{DC: "idc-a", Broker: "broker-a-0", StoredIn: "orders", Queue: 2, Offset: 7, ID: "m1", StoreTime: at(3)}
	copyB := orig
	copyB.DC, copyB.Broker, copyB.Replicated, copyB.ReplicatedAt = "idc-b", "broker-b-0", true, at(20)
	retry := TracedRecord{DC: "idc-a", Broker: "broker-a-0", StoredIn: "%RETRY%audit", Offset: 4, ID: "m1:2", StoreTime: at(400), ReconsumeTimes: 1}
	dead := TracedRecord{DC: "idc-a", Broker: "broker-a-0", StoredIn: "%DLQ%audit", Offset: 0, ID: "m1:3", StoreTime: at(900), ReconsumeTimes: 2}
	return MessageTrace{
		ID: "m1", Topic: "orders", BornDC: "idc-a", BornTime: at(0),
		Records: []TracedRecord{orig, copyB},
		Groups: []GroupTrace{
			{Group: "audit", Subscribed: true,
				Deliveries:  []RecordProgress{{Record: orig, CommittedOffset: 8, Consumed: true, ConsumedAfter: at(300), ConsumedBy: at(390)}, {Record: copyB, CommittedOffset: -1}},
				Retries:     []RecordProgress{{Record: retry, CommittedOffset: 5, Consumed: true, ConsumedBy: at(800)}},
				DeadLetters: []RecordProgress{{Record: dead, CommittedOffset: -1}}},
			{Group: "billing", Subscribed: true, Deliveries: []RecordProgress{
				{Record: orig, CommittedOffset: 8, Consumed: true, ConsumedAfter: at(40), ConsumedBy: at(50)},
				{Record: copyB, CommittedOffset: 8, Consumed: true, Synced: true, ConsumedAfter: at(100), ConsumedBy: at(500)}}},
			{Group: "idle", Subscribed: true, Deliveries: []RecordProgress{{Record: orig, CommittedOffset: -1}, {Record: copyB, CommittedOffset: -1}}},
		},
	}
}

func TestTimeline(t *testing.T) {
	m := tracedMessage()
	var kinds []string
	var texts []string
	for _, e := range m.Timeline() {
		kinds = append(kinds, e.Group+":"+string(e.Kind))
		texts = append(texts, e.Text)
	}
	want := []string{":born", ":stored", ":replicated",
		"audit:delivered", "audit:retried", "audit:delivered", "audit:dead-lettered",
		"billing:acked", "billing:synced", "idle:pending"}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("kinds\n got %v\nwant %v", kinds, want)
	}
	for _, s := range []string{
		"stored on broker-a-0: orders queue 2 offset 7",
		"replicated to broker-b-0: orders queue 2 offset 7, 17ms after it was stored",
		"redelivery #2 queued in %RETRY%audit",
		"dead-lettered after 2 deliveries",
		"acked by billing (delivery #1)",
		"not delivered to idle yet (the group has not read the queue)",
	} {
		if !strings.Contains(strings.Join(texts, "\n"), s) {
			t.Errorf("timeline lacks %q:\n%s", s, strings.Join(texts, "\n"))
		}
	}
	for _, e := range m.Timeline() {
		if e.Group == "billing" && e.Kind == EventSynced && e.Earliest.IsZero() {
			t.Errorf("a synced offset known within bounds has no lower bound: %+v", e)
		}
	}
}

func TestOutcome(t *testing.T) {
	m := tracedMessage()
	want := map[string]string{"audit": "dead-lettered", "billing": "acked", "idle": "not delivered"}
	for _, g := range m.Groups {
		if got := g.Outcome(); got != want[g.Group] {
			t.Errorf("%s: %q, want %q", g.Group, got, want[g.Group])
		}
	}
	tests := []struct {
		name string
		g    GroupTrace
		want string
	}{
		{"in flight", GroupTrace{Deliveries: []RecordProgress{{InFlight: true}}}, "in flight"},
		{"settled", GroupTrace{Deliveries: []RecordProgress{{Settled: true}}}, "acked"},
		{"synced only", GroupTrace{Deliveries: []RecordProgress{{Consumed: true, Synced: true}}}, "acked in another DC"},
		{"retrying", GroupTrace{Retries: []RecordProgress{{}}}, "retrying"},
		{"acked after retries", GroupTrace{Retries: []RecordProgress{{Consumed: true}, {Consumed: true}}}, "acked after 2 retries"},
		{"re-driven", GroupTrace{DeadLetters: []RecordProgress{{Consumed: true}}}, "re-driven"},
	}
	for _, tt := range tests {
		if got := tt.g.Outcome(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
