package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// IDC detection sources, in the default order of IDCConfig.Sources.
const (
	// SourceEnv: the DUOMQ_IDC environment variable.
	SourceEnv = "env"
	// SourceFile: the logicIdc file (IDCConfig.File).
	SourceFile = "file"
	// SourceIP: the proxy's ResolveIDC matched one of the host's addresses
	// against the DCs' CIDRs.
	SourceIP = "ip"
	// SourceDefault: IDCConfig.Default.
	SourceDefault = "default"
	// SourceProxy: nothing above applied and the client has a single
	// proxy; the IDC is that proxy's DC, learned from its heartbeat reply.
	SourceProxy = "proxy"
)

// EnvIDC is the environment variable naming the client's IDC.
const EnvIDC = "DUOMQ_IDC"

// DefaultIDCFile is where hosts record their logical IDC.
const DefaultIDCFile = "/etc/logicIdc"

// Config configures a Client. Tags are configuration keys (kebab-case).
type Config struct {
	// Proxy is the gRPC target of the proxy to use when Proxies names none
	// for the client's IDC ("host:port", or "dns:///name:port" for several
	// proxies behind one name).
	Proxy string `mapstructure:"proxy" json:"proxy,omitempty"`
	// Proxies maps IDC names to their proxy's target. A client connects to
	// the proxy of its own IDC.
	Proxies map[string]string `mapstructure:"proxies" json:"proxies,omitempty"`
	// App names the application in heartbeats (duomq clients shows it).
	App string `mapstructure:"app" json:"app"`
	// AccessKey and SecretKey sign every call; empty: calls are unsigned.
	AccessKey string `mapstructure:"access-key" json:"access-key,omitempty"`
	SecretKey string `mapstructure:"secret-key" json:"-"`
	// TLS secures the connection to the proxy.
	TLS TLSConfig `mapstructure:"tls" json:"tls"`
	// IDC says how the client finds its own IDC.
	IDC IDCConfig `mapstructure:"idc" json:"idc"`
	// RequestTimeout bounds one attempt of a call (a receive gets its
	// long-polling wait on top).
	RequestTimeout time.Duration `mapstructure:"request-timeout" json:"request-timeout"`
	// Retry is the policy for retryable failures.
	Retry RetryPolicy `mapstructure:"retry" json:"retry"`
	// CompressThreshold: bodies larger than this many bytes are sent
	// compressed with zstd (when that makes them smaller); 0 disables it.
	CompressThreshold int `mapstructure:"compress-threshold" json:"compress-threshold"`
	// MaxMessageBytes refuses larger bodies before sending, measured
	// before compression (0: leave the check to the server).
	MaxMessageBytes int `mapstructure:"max-message-bytes" json:"max-message-bytes"`
	// MaxReceiveBytes is the largest reply the client accepts (a batch of
	// received messages).
	MaxReceiveBytes int `mapstructure:"max-receive-bytes" json:"max-receive-bytes"`
	// HeartbeatInterval is how often the client announces itself.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat-interval" json:"heartbeat-interval"`
	// MaxAsyncSends bounds the SendAsync calls in flight per producer.
	MaxAsyncSends int `mapstructure:"max-async-sends" json:"max-async-sends"`
}

// TLSConfig secures the connection to the proxy.
type TLSConfig struct {
	Enabled bool `mapstructure:"enabled" json:"enabled"`
	// CAFile verifies the proxy's certificate (empty: the system pool).
	CAFile string `mapstructure:"ca-file" json:"ca-file,omitempty"`
	// CertFile and KeyFile: the client's certificate for mutual TLS.
	CertFile string `mapstructure:"cert-file" json:"cert-file,omitempty"`
	KeyFile  string `mapstructure:"key-file" json:"key-file,omitempty"`
	// ServerName overrides the name checked in the proxy's certificate.
	ServerName         string `mapstructure:"server-name" json:"server-name,omitempty"`
	InsecureSkipVerify bool   `mapstructure:"insecure-skip-verify" json:"insecure-skip-verify,omitempty"`
}

// IDCConfig says how the client finds the IDC it runs in.
type IDCConfig struct {
	// Sources are tried in order; the first that gives a name wins. Known
	// sources: env, file, ip, default.
	Sources []string `mapstructure:"sources" json:"sources"`
	// File is the logicIdc file; its trimmed content is the IDC name.
	File string `mapstructure:"file" json:"file"`
	// ExtraAddresses are sent to ResolveIDC with the host's own
	// non-loopback addresses (tests and hosts behind NAT use them).
	ExtraAddresses []string `mapstructure:"extra-addresses" json:"extra-addresses,omitempty"`
	// Default is the IDC when no earlier source gives one.
	Default string `mapstructure:"default" json:"default,omitempty"`
	// LookupTimeout bounds the ResolveIDC call.
	LookupTimeout time.Duration `mapstructure:"lookup-timeout" json:"lookup-timeout"`
}

// RetryPolicy retries calls that failed with UNAVAILABLE,
// RESOURCE_EXHAUSTED (after the server's RetryInfo delay at least) or an
// attempt's own timeout, with exponential backoff. Other failures are
// returned at once.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt; 1 disables retries.
	MaxAttempts    int           `mapstructure:"max-attempts" json:"max-attempts"`
	InitialBackoff time.Duration `mapstructure:"initial-backoff" json:"initial-backoff"`
	MaxBackoff     time.Duration `mapstructure:"max-backoff" json:"max-backoff"`
	Multiplier     float64       `mapstructure:"multiplier" json:"multiplier"`
}

// DefaultConfig returns a configuration to complete with a proxy address.
func DefaultConfig() Config {
	return Config{
		App: "unknown",
		IDC: IDCConfig{
			Sources:       []string{SourceEnv, SourceFile, SourceIP, SourceDefault},
			File:          DefaultIDCFile,
			LookupTimeout: 3 * time.Second,
		},
		RequestTimeout: 5 * time.Second,
		// About 7 s of backoff in all: longer than a broker's heartbeat
		// period, so a send soon after a topic is created, or while a
		// broker restarts, waits for the route instead of failing.
		Retry: RetryPolicy{
			MaxAttempts:    8,
			InitialBackoff: 100 * time.Millisecond,
			MaxBackoff:     2 * time.Second,
			Multiplier:     2,
		},
		CompressThreshold: 4 << 10,
		MaxMessageBytes:   4 << 20,
		MaxReceiveBytes:   256 << 20,
		HeartbeatInterval: 5 * time.Second,
		MaxAsyncSends:     1024,
	}
}

// Validate reports the first bad field, naming its key.
func (c *Config) Validate() error {
	if c.Proxy == "" && len(c.Proxies) == 0 {
		return errors.New("client config: proxy or proxies: give at least one proxy address")
	}
	for idc, addr := range c.Proxies {
		if idc == "" || addr == "" {
			return fmt.Errorf("client config: proxies: empty IDC or address (%q: %q)", idc, addr)
		}
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return errors.New("client config: access-key and secret-key go together")
	}
	for _, s := range c.IDC.Sources {
		switch s {
		case SourceEnv, SourceFile, SourceIP, SourceDefault:
		default:
			return fmt.Errorf("client config: idc.sources: unknown source %q (env, file, ip, default)", s)
		}
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{c.RequestTimeout <= 0, "request-timeout must be positive"},
		{c.Retry.MaxAttempts < 1, "retry.max-attempts must be at least 1"},
		{c.Retry.InitialBackoff <= 0, "retry.initial-backoff must be positive"},
		{c.Retry.MaxBackoff < c.Retry.InitialBackoff, "retry.max-backoff must be at least retry.initial-backoff"},
		{c.Retry.Multiplier < 1, "retry.multiplier must be at least 1"},
		{c.CompressThreshold < 0, "compress-threshold must not be negative"},
		{c.MaxMessageBytes < 0, "max-message-bytes must not be negative"},
		{c.MaxReceiveBytes <= 0, "max-receive-bytes must be positive"},
		{c.HeartbeatInterval <= 0, "heartbeat-interval must be positive"},
		{c.MaxAsyncSends < 1, "max-async-sends must be at least 1"},
		{c.IDC.LookupTimeout <= 0, "idc.lookup-timeout must be positive"},
		{c.TLS.CertFile != "" && c.TLS.KeyFile == "", "tls.key-file is needed with tls.cert-file"},
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("client config: %s", ch.msg)
		}
	}
	return nil
}

// proxyFor picks the proxy target of an IDC: Proxies[idc], else Proxy.
func (c *Config) proxyFor(idc string) (string, error) {
	if a, ok := c.Proxies[idc]; ok && idc != "" {
		return a, nil
	}
	if c.Proxy != "" {
		return c.Proxy, nil
	}
	if len(c.Proxies) == 1 {
		for _, a := range c.Proxies {
			return a, nil
		}
	}
	known := make([]string, 0, len(c.Proxies))
	for k := range c.Proxies {
		known = append(known, k)
	}
	sort.Strings(known)
	if idc == "" {
		return "", fmt.Errorf("%w: set %s, write %s, or configure idc.default to pick one of the proxies of %s",
			ErrNoIDC, EnvIDC, c.IDC.File, strings.Join(known, ", "))
	}
	return "", fmt.Errorf("client config: no proxy for IDC %q (proxies: %s)", idc, strings.Join(known, ", "))
}

// lookupTargets lists the proxies to ask for ResolveIDC: every one.
func (c *Config) lookupTargets() []string {
	var out []string
	if c.Proxy != "" {
		out = append(out, c.Proxy)
	}
	idcs := make([]string, 0, len(c.Proxies))
	for k := range c.Proxies {
		idcs = append(idcs, k)
	}
	sort.Strings(idcs)
	for _, k := range idcs {
		out = append(out, c.Proxies[k])
	}
	return out
}

// tlsConfig builds the crypto/tls configuration.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("client config: tls.ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client config: tls.ca-file %s: no certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client config: tls.cert-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
