package broker

import (
	"errors"
	"testing"
)

func TestReceiptRoundTrip(t *testing.T) {
	r := receipt{broker: "broker-a-0", topic: "%RETRY%billing", queue: 7, offset: 1 << 40, gen: 1<<63 + 5}
	got, err := parseReceipt(r.String())
	if err != nil || got != r {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

// FuzzParseReceipt: any input either fails with ErrInvalidArgument or
// parses to a receipt that encodes back to an equal one.
func FuzzParseReceipt(f *testing.F) {
	f.Add(receipt{broker: "b", topic: "t", queue: 1, offset: 2, gen: 3}.String())
	f.Add("")
	f.Add("MSBiIHQgMSAyIDM")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, h string) {
		r, err := parseReceipt(h)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error kind: %v", err)
			}
			return
		}
		again, err := parseReceipt(r.String())
		if err != nil || again != r {
			t.Fatalf("re-parse of %+v: %+v, %v", r, again, err)
		}
	})
}
