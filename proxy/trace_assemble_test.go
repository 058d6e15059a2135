package proxy

import (
	"testing"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/broker/commitlog"
)

func hit(dc, broker string, recs ...any) brokerHit {
	res := &brokerpb.LookupResponse{}
	for i := 0; i < len(recs); i += 2 {
		res.Messages = append(res.Messages, recs[i].(*brokerpb.Message))
		res.Traces = append(res.Traces, recs[i+1].(*brokerpb.RecordTrace))
	}
	return brokerHit{b: brokerRef{DC: dc, Name: broker}, res: res}
}

func rec(topic, id string, queue uint32, off, stored int64, props map[string]string) *brokerpb.Message {
	return &brokerpb.Message{Id: id, Topic: topic, QueueId: queue, QueueOffset: off, StoreTimeUnixNano: stored,
		BornTimeUnixNano: 1, BornDc: "idc-a", Keys: []string{"k"}, Properties: props}
}

func replicated(m *brokerpb.Message) *brokerpb.Message {
	m.Flags |= commitlog.FlagReplicated
	return m
}

func progress(gs ...*brokerpb.GroupProgress) *brokerpb.RecordTrace {
	return &brokerpb.RecordTrace{Groups: gs}
}

func groupTrace(t *testing.T, m *proxypb.MessageTrace, name string) *proxypb.GroupTrace {
	t.Helper()
	for _, g := range m.GetGroups() {
		if g.GetGroup() == name {
			return g
		}
	}
	t.Fatalf("message %s has no group %s: %v", m.GetId(), name, m.GetGroups())
	return nil
}

// TestAssembleTrace: records of one message from both DCs, its retry and
// dead-letter copies, and a second message, merge into two traces.
func TestAssembleTrace(t *testing.T) {
	copyProps := func(n string) map[string]string {
		return map[string]string{propOriginID: "m1", propOriginTopic: "orders", propReconsumeTimes: n}
	}
	hits := []brokerHit{
		hit("idc-b", "broker-b-0",
			replicated(rec("orders", "m1", 2, 7, 100, nil)),
			&brokerpb.RecordTrace{ReplicatedAtUnixNano: 130, Groups: []*brokerpb.GroupProgress{{Group: "billing", CommittedOffset: 8, Consumed: true, Synced: true}}}),
		hit("idc-a", "broker-a-0",
			rec("orders", "m1", 2, 7, 100, nil), progress(
				&brokerpb.GroupProgress{Group: "billing", CommittedOffset: 8, Consumed: true, ConsumedByUnixNano: 150},
				&brokerpb.GroupProgress{Group: "audit", CommittedOffset: 8, Consumed: true},
				&brokerpb.GroupProgress{Group: "gone", CommittedOffset: 3},
			),
			rec("%DLQ%audit", "m1:3", 0, 0, 300, copyProps("2")), progress(&brokerpb.GroupProgress{Group: "audit", CommittedOffset: -1}),
			rec("%RETRY%audit", "m1:2", 0, 4, 200, copyProps("1")), progress(&brokerpb.GroupProgress{Group: "audit", CommittedOffset: 5, Consumed: true}),
			rec("orders", "m2", 0, 1, 500, nil), progress(),
		),
		hit("idc-b", "broker-b-1"),
	}
	subscribers := func(topic string) []string {
		if topic != "orders" {
			t.Fatalf("subscribers of %q", topic)
		}
		return []string{"audit", "billing", "idle"}
	}
	out := assembleTrace(hits, subscribers)
	if len(out) != 2 || out[0].GetId() != "m2" || out[1].GetId() != "m1" {
		t.Fatalf("messages %v, want m2 then m1 (newest first)", out)
	}
	m := out[1]
	if m.GetTopic() != "orders" || m.GetBornDc() != "idc-a" || len(m.GetRecords()) != 2 {
		t.Fatalf("m1: %v", m)
	}
	lead, follow := m.GetRecords()[0], m.GetRecords()[1]
	if lead.GetDc() != "idc-a" || lead.GetReplicated() || follow.GetDc() != "idc-b" || !follow.GetReplicated() ||
		follow.GetReplicatedAtUnixNano() != 130 || follow.GetOffset() != lead.GetOffset() {
		t.Fatalf("records: %v, %v (original first)", lead, follow)
	}
	var names []string
	for _, g := range m.GetGroups() {
		names = append(names, g.GetGroup())
	}
	if want := "[audit billing gone idle]"; fmtSlice(names) != want {
		t.Fatalf("groups %v, want %s", names, want)
	}
	billing := groupTrace(t, m, "billing")
	if !billing.GetSubscribed() || len(billing.GetDeliveries()) != 2 ||
		!billing.GetDeliveries()[0].GetConsumed() || billing.GetDeliveries()[0].GetConsumedByUnixNano() != 150 ||
		!billing.GetDeliveries()[1].GetSynced() {
		t.Fatalf("billing: %v", billing)
	}
	idle := groupTrace(t, m, "idle")
	if len(idle.GetDeliveries()) != 2 || idle.GetDeliveries()[0].GetConsumed() || idle.GetDeliveries()[0].GetCommittedOffset() != -1 {
		t.Fatalf("idle group: %v", idle)
	}
	if gone := groupTrace(t, m, "gone"); gone.GetSubscribed() {
		t.Fatalf("a group not subscribing in the metadata: %v", gone)
	}
	audit := groupTrace(t, m, "audit")
	if len(audit.GetRetries()) != 1 || audit.GetRetries()[0].GetRecord().GetId() != "m1:2" || !audit.GetRetries()[0].GetConsumed() ||
		audit.GetRetries()[0].GetRecord().GetReconsumeTimes() != 1 {
		t.Fatalf("audit retries: %v", audit.GetRetries())
	}
	if len(audit.GetDeadLetters()) != 1 || audit.GetDeadLetters()[0].GetRecord().GetStoredIn() != "%DLQ%audit" {
		t.Fatalf("audit dead letters: %v", audit.GetDeadLetters())
	}
	if len(groupTrace(t, m, "billing").GetRetries()) != 0 {
		t.Fatal("another group's retry copy shown for billing")
	}
}

// TestAssembleTraceScheduled: a delayed message not yet due is one
// scheduled record and no group has a delivery of it.
func TestAssembleTraceScheduled(t *testing.T) {
	props := map[string]string{propRealTopic: "%MIRROR%idc-a%orders", propDeliverAt: "900"}
	out := assembleTrace([]brokerHit{hit("idc-a", "b0", rec(scheduleTopic, "m1", 3, 0, 100, props), progress())},
		func(string) []string { return []string{"g"} })
	if len(out) != 1 {
		t.Fatalf("%v", out)
	}
	m := out[0]
	if m.GetTopic() != "orders" || m.GetDeliverAtUnixNano() != 900 || !m.GetRecords()[0].GetScheduled() {
		t.Fatalf("scheduled message: %v", m)
	}
	if g := groupTrace(t, m, "g"); len(g.GetDeliveries()) != 0 {
		t.Fatalf("deliveries of a message not due: %v", g.GetDeliveries())
	}
}

// TestAssembleTraceOnlyCopies: the original is gone (retention); the
// message is still traced from its dead letter.
func TestAssembleTraceOnlyCopies(t *testing.T) {
	props := map[string]string{propOriginID: "m1", propOriginTopic: "%MIRROR%idc-b%orders", propReconsumeTimes: "3"}
	out := assembleTrace([]brokerHit{hit("idc-a", "b0", rec("%DLQ%g", "m1:4", 0, 0, 100, props), progress())},
		func(string) []string { return nil })
	if len(out) != 1 || out[0].GetId() != "m1" || out[0].GetTopic() != "orders" || len(out[0].GetRecords()) != 0 {
		t.Fatalf("%v", out)
	}
	if g := groupTrace(t, out[0], "g"); len(g.GetDeadLetters()) != 1 || g.GetSubscribed() {
		t.Fatalf("%v", g)
	}
}

func fmtSlice(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}
