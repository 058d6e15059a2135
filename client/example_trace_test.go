package client_test

import (
	"fmt"
	"time"

	"github.com/duomq/duomq/client"
)

// A trace (as Client.TraceMessage returns it) told in order: the message
// was stored in idc-a, copied to idc-b, and acked by billing.
func ExampleMessageTrace_Timeline() {
	born := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	stored := client.TracedRecord{DC: "idc-a", Broker: "broker-a-0", StoredIn: "orders", Queue: 1, Offset: 41, StoreTime: born.Add(2 * time.Millisecond)}
	copied := stored
	copied.DC, copied.Broker, copied.Replicated, copied.ReplicatedAt = "idc-b", "broker-b-0", true, born.Add(9*time.Millisecond)
	m := client.MessageTrace{
		ID: "m-1", Topic: "orders", BornDC: "idc-a", BornTime: born,
		Records: []client.TracedRecord{stored, copied},
		Groups: []client.GroupTrace{{Group: "billing", Subscribed: true, Deliveries: []client.RecordProgress{
			{Record: stored, CommittedOffset: 42, Consumed: true, ConsumedAfter: born.Add(20 * time.Millisecond), ConsumedBy: born.Add(30 * time.Millisecond)},
			{Record: copied, CommittedOffset: -1},
		}}},
	}
	for _, e := range m.Timeline() {
		fmt.Printf("%s %-6s %-10s %s\n", e.At.Sub(born), e.DC, e.Kind, e.Text)
	}
	fmt.Println("billing:", m.Groups[0].Outcome())
	// Output:
	// 0s idc-a  born       born in idc-a
	// 2ms idc-a  stored     stored on broker-a-0: orders queue 1 offset 41
	// 9ms idc-b  replicated replicated to broker-b-0: orders queue 1 offset 41, 7ms after it was stored
	// 30ms idc-a  acked      acked by billing (delivery #1)
	// billing: acked
}
