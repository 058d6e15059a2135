package proxy

import (
	"errors"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/meta"
)

func TestReceiptRoundTrip(t *testing.T) {
	r := receipt{DC: "idc-b", Broker: "broker-b-1", Addr: "127.0.0.1:4000", Topic: "%RETRY%g", Handle: "opaque:1:2:3"}
	got, err := decodeReceipt(r.encode())
	if err != nil || got != r {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"", "r1.", "r1.!!!", "x1.AAAA", r.encode()[:len(r.encode())-2], r.encode() + "AA"} {
		if _, err := decodeReceipt(bad); !errors.Is(err, ErrBadReceiptHandle) {
			t.Errorf("decode %q: %v", bad, err)
		}
	}
}

// FuzzDecodeReceipt: any input decodes to an error or to a receipt that
// encodes back to the same handle.
func FuzzDecodeReceipt(f *testing.F) {
	f.Add(receipt{DC: "a", Broker: "b", Addr: "c", Topic: "d", Handle: "e"}.encode())
	f.Add("r1.")
	f.Add("r1.AQID")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := decodeReceipt(s)
		if err != nil {
			if !errors.Is(err, ErrBadReceiptHandle) {
				t.Fatalf("error %v is not ErrBadReceiptHandle", err)
			}
			return
		}
		if again, err := decodeReceipt(r.encode()); err != nil || again != r {
			t.Fatalf("re-encode of %+v: %+v %v", r, again, err)
		}
	})
}

func TestTagList(t *testing.T) {
	g := meta.Group{Subscriptions: []meta.Subscription{{Topic: "t", Tags: "x || y"}, {Topic: "u", Tags: "*"}}}
	cases := []struct {
		expr, topic string
		want        []string
	}{
		{"", "t", []string{"x", "y"}},
		{"", "u", nil},
		{"*", "t", nil},
		{" a ||b|| ", "t", []string{"a", "b"}},
		{"a || *", "t", nil},
	}
	for _, tc := range cases {
		got := tagList(tc.expr, g, tc.topic)
		if len(got) != len(tc.want) {
			t.Fatalf("tagList(%q, %s) = %v, want %v", tc.expr, tc.topic, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("tagList(%q, %s) = %v, want %v", tc.expr, tc.topic, got, tc.want)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Nameservers = map[string][]string{"idc-a": {"127.0.0.1:9876"}}
		return c
	}
	if c := valid(); c.Validate() != nil {
		t.Fatalf("defaults with a nameserver: %v", c.Validate())
	}
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"no own nameserver", func(c *Config) { c.Nameservers = map[string][]string{"idc-b": {"x:1"}} }},
		{"bad dc", func(c *Config) { c.DC = "a b" }},
		{"empty listen", func(c *Config) { c.Listen = "" }},
		{"zero ttl", func(c *Config) { c.ConsumerTTL = 0 }},
		{"short consumer ttl", func(c *Config) { c.ConsumerTTL = time.Second }},
		{"negative rate", func(c *Config) { c.Throttle.Topic.Rate = -1 }},
		{"zero breaker failures", func(c *Config) { c.Breaker.Failures = 0 }},
		{"auth without apps", func(c *Config) { c.Auth.Enabled = true }},
		{"duplicate access key", func(c *Config) {
			c.Auth = AuthConfig{Enabled: true, MaxSkew: time.Minute, Apps: []App{{AccessKey: "k", Secret: "s"}, {AccessKey: "k", Secret: "t"}}}
		}},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }},
		{"mtls without ca", func(c *Config) { c.TLS = TLSConfig{CertFile: "c", KeyFile: "k", ClientCertAuth: true} }},
		{"invisible over max", func(c *Config) { c.Limits.DefaultInvisible = 13 * time.Hour }},
	}
	for _, tc := range cases {
		c := valid()
		tc.edit(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
