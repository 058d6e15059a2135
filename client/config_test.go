package client

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"default with proxy", func(c *Config) {}, ""},
		{"no proxy", func(c *Config) { c.Proxy = "" }, "proxy"},
		{"proxies only", func(c *Config) { c.Proxy = ""; c.Proxies = map[string]string{"idc-a": "a:1"} }, ""},
		{"empty proxy address", func(c *Config) { c.Proxies = map[string]string{"idc-a": ""} }, "proxies"},
		{"key without secret", func(c *Config) { c.AccessKey = "ak" }, "secret-key"},
		{"unknown IDC source", func(c *Config) { c.IDC.Sources = []string{"env", "dns"} }, "idc.sources"},
		{"zero timeout", func(c *Config) { c.RequestTimeout = 0 }, "request-timeout"},
		{"no attempts", func(c *Config) { c.Retry.MaxAttempts = 0 }, "retry.max-attempts"},
		{"backoff order", func(c *Config) { c.Retry.MaxBackoff = c.Retry.InitialBackoff / 2 }, "retry.max-backoff"},
		{"negative threshold", func(c *Config) { c.CompressThreshold = -1 }, "compress-threshold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Proxy = "127.0.0.1:1"
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestDefaultConfigValues(t *testing.T) {
	c := DefaultConfig()
	if c.CompressThreshold != 4096 || c.IDC.File != "/etc/logicIdc" || c.MaxMessageBytes != 4<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	want := []string{SourceEnv, SourceFile, SourceIP, SourceDefault}
	if strings.Join(c.IDC.Sources, ",") != strings.Join(want, ",") {
		t.Fatalf("IDC sources %v, want %v", c.IDC.Sources, want)
	}
}

func TestProxyFor(t *testing.T) {
	c := DefaultConfig()
	c.Proxies = map[string]string{"idc-a": "a:1", "idc-b": "b:1"}
	if got, _ := c.proxyFor("idc-b"); got != "b:1" {
		t.Fatalf("idc-b -> %q", got)
	}
	if _, err := c.proxyFor(""); !errors.Is(err, ErrNoIDC) {
		t.Fatalf("unknown IDC with two proxies: %v", err)
	}
	if _, err := c.proxyFor("idc-c"); err == nil || !strings.Contains(err.Error(), "idc-a, idc-b") {
		t.Fatalf("IDC without proxy: %v", err)
	}
	c.Proxy = "any:1"
	if got, _ := c.proxyFor("idc-c"); got != "any:1" {
		t.Fatalf("fallback to Proxy: %q", got)
	}
	one := DefaultConfig()
	one.Proxies = map[string]string{"idc-a": "a:1"}
	if got, _ := one.proxyFor(""); got != "a:1" {
		t.Fatalf("single proxy: %q", got)
	}
}

func TestTLSConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Proxy = "127.0.0.1:1"
	cfg.TLS = TLSConfig{Enabled: true, CAFile: t.TempDir() + "/missing.pem"}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "tls.ca-file") {
		t.Fatalf("missing CA file: %v", err)
	}
	cfg.TLS = TLSConfig{Enabled: true, ServerName: "proxy.example"}
	cfg.IDC.Sources = []string{SourceDefault}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("TLS with the system pool: %v", err)
	}
	c.Close()
}
