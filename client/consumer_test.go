package client

import (
	"testing"
	"time"
)

func TestParseConsumeFrom(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want ConsumeFrom
		bad  bool
	}{
		{"", ConsumeFromLatest, false},
		{"latest", ConsumeFromLatest, false},
		{"EARLIEST", ConsumeFromEarliest, false},
		{"2026-05-01T12:00:00Z", ConsumeFromTime(at), false},
		{"2026-05-01T14:00:00.000+02:00", ConsumeFromTime(at), false},
		{"yesterday", ConsumeFrom{}, true},
	}
	for _, tc := range cases {
		got, err := ParseConsumeFrom(tc.in)
		if (err != nil) != tc.bad {
			t.Fatalf("%q: err %v", tc.in, err)
		}
		if !tc.bad && (got.where != tc.want.where || !got.at.Equal(tc.want.at)) {
			t.Fatalf("%q: got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestConsumerOptionsValidate(t *testing.T) {
	for name, opt := range map[string]ConsumerOption{
		"negative wait":   WithReceiveWait(-time.Second),
		"short invisible": WithInvisibleDuration(time.Millisecond),
		"zero batch":      WithBatchSize(0),
		"negative drain":  WithDrainTimeout(-1),
	} {
		cfg := defaultConsumerConfig()
		opt(&cfg)
		if cfg.validate() == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
