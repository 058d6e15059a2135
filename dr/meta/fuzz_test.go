package meta

import (
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to the value decoder of every record
// type: it must never panic, and whatever it accepts must re-encode to a
// fixed point.
func FuzzDecode(f *testing.F) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, v := range []any{
		DC{Name: "idc-a", CIDRs: []string{"10.0.0.0/8"}, State: DCActive, UpdatedBy: "op", UpdatedAt: at},
		Topic{Name: "orders", Ordered: true, Queues: 8, Primary: "idc-a", Replication: ReplicationSync, RetentionAge: time.Hour, MaxMessageBytes: 1 << 20},
		Group{Name: "g", Subscriptions: []Subscription{{Topic: "orders", Tags: "a || b"}}, MaxRetries: 3, Mode: ModeBroadcast, Ordered: true},
		Ordered{Topic: "orders", Primary: "idc-b", Epoch: 7},
		Traffic{Weights: map[string]int{"idc-a": 1}, TopicOverrides: map[string]map[string]int{"t": {"idc-b": 2}}, BlockedDCs: []string{"idc-a"}},
		Offset{Offset: 42, UpdatedAt: at},
	} {
		s, err := encode(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"retention_age":"x"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fixedPoint[DC](t, b)
		fixedPoint[Topic](t, b)
		fixedPoint[Group](t, b)
		fixedPoint[Ordered](t, b)
		fixedPoint[Traffic](t, b)
		fixedPoint[Offset](t, b)
	})
}

func fixedPoint[T any](t *testing.T, b []byte) {
	var v T
	if decode("k", b, &v) != nil {
		return
	}
	enc1, err := encode(v)
	if err != nil {
		t.Fatalf("%T decoded from %q does not encode: %v", v, b, err)
	}
	var w T
	if err := decode("k", []byte(enc1), &w); err != nil {
		t.Fatalf("%T: re-encoded %s does not decode: %v", v, enc1, err)
	}
	if enc2, _ := encode(w); enc2 != enc1 {
		t.Fatalf("%T: not a fixed point:\n%s\n%s", v, enc1, enc2)
	}
}
