package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
)

// Config configures one proxy (the `proxy` section of `duomq proxy
// --config FILE`).
type Config struct {
	// ID names this proxy in the consumer presence keys; empty: the DC
	// and a random suffix, chosen at New.
	ID string `mapstructure:"id" json:"id"`
	// DC is the data center the proxy serves.
	DC string `mapstructure:"dc" json:"dc"`
	// Listen is the gRPC address of the proxy service.
	Listen string `mapstructure:"listen" json:"listen"`
	// MetricsListen serves /metrics and /healthz.
	MetricsListen string `mapstructure:"metrics-listen" json:"metrics-listen"`
	// Etcd are the client URLs of the metadata service.
	Etcd []string `mapstructure:"etcd-endpoints" json:"etcd-endpoints"`
	// Nameservers maps every DC the proxy routes to (its own first of
	// all) to that DC's nameserver addresses.
	Nameservers map[string][]string `mapstructure:"nameservers" json:"nameservers"`
	// RouteRefresh is how long a topic route is used before it is asked
	// for again.
	RouteRefresh time.Duration `mapstructure:"route-refresh" json:"route-refresh"`
	// BrokerTimeout bounds a broker call when the client's request has no
	// deadline (a long-polling receive gets its wait on top).
	BrokerTimeout time.Duration `mapstructure:"broker-timeout" json:"broker-timeout"`
	// ClientTTL is how long a client stays listed after its last
	// heartbeat.
	ClientTTL time.Duration `mapstructure:"client-ttl" json:"client-ttl"`
	// ConsumerTTL is how long a consumer group counts as live in this DC
	// after its last heartbeat or receive here; it is also the TTL of the
	// presence keys in etcd.
	ConsumerTTL time.Duration `mapstructure:"consumer-ttl" json:"consumer-ttl"`

	Limits   LimitsConfig   `mapstructure:"limits" json:"limits"`
	Throttle ThrottleConfig `mapstructure:"throttle" json:"throttle"`
	Breaker  BreakerConfig  `mapstructure:"breaker" json:"breaker"`
	Auth     AuthConfig     `mapstructure:"auth" json:"auth"`
	TLS      TLSConfig      `mapstructure:"tls" json:"tls"`
}

// LimitsConfig bounds requests.
type LimitsConfig struct {
	// MaxBatch is the most messages one Send may carry.
	MaxBatch int `mapstructure:"max-batch" json:"max-batch"`
	// MaxRequestBytes is the gRPC receive limit of the proxy service.
	// Message bodies are bounded by their topic's max_message_bytes.
	MaxRequestBytes int `mapstructure:"max-request-bytes" json:"max-request-bytes"`
	// MaxReceive caps a Receive's max_messages.
	MaxReceive int `mapstructure:"max-receive" json:"max-receive"`
	// MaxWait caps a Receive's long-polling wait.
	MaxWait time.Duration `mapstructure:"max-wait" json:"max-wait"`
	// DefaultInvisible is a received message's invisibility when the
	// request gives none; MaxInvisible caps it.
	DefaultInvisible time.Duration `mapstructure:"default-invisible" json:"default-invisible"`
	MaxInvisible     time.Duration `mapstructure:"max-invisible" json:"max-invisible"`
	// MaxDeadLetters caps how many dead letters one call reads per queue.
	MaxDeadLetters int `mapstructure:"max-dead-letters" json:"max-dead-letters"`
}

// Rate is a token bucket: Rate per second, bursts of up to Burst.
type Rate struct {
	Rate  float64 `mapstructure:"rate" json:"rate"`
	Burst int     `mapstructure:"burst" json:"burst"`
}

func (r Rate) enabled() bool { return r.Rate > 0 }

// ThrottleConfig limits traffic through this proxy; a zero rate is no
// limit. Throttled calls are RESOURCE_EXHAUSTED with a retry delay.
type ThrottleConfig struct {
	// Topic limits the messages sent to each topic per second.
	Topic Rate `mapstructure:"topic" json:"topic"`
	// Topics replace Topic for the named topics.
	Topics map[string]Rate `mapstructure:"topics" json:"topics"`
	// Client limits the calls of each client (client_id, else its
	// address) per second.
	Client Rate `mapstructure:"client" json:"client"`
}

// BreakerConfig is the circuit breaker kept per broker.
type BreakerConfig struct {
	// Failures is how many consecutive failed calls (unreachable, timed
	// out) open the breaker.
	Failures uint32 `mapstructure:"failures" json:"failures"`
	// OpenFor is how long an open breaker refuses calls before it lets
	// probes through (half-open).
	OpenFor time.Duration `mapstructure:"open-for" json:"open-for"`
	// Probes is how many calls a half-open breaker lets through; that
	// many successes close it.
	Probes uint32 `mapstructure:"probes" json:"probes"`
}

// AuthConfig turns on authentication by access key (off by default).
type AuthConfig struct {
	Enabled bool `mapstructure:"enabled" json:"enabled"`
	// MaxSkew is how far a call's timestamp may be from the proxy's clock.
	MaxSkew time.Duration `mapstructure:"max-skew" json:"max-skew"`
	Apps    []App         `mapstructure:"apps" json:"apps"`
}

// App is one application's credentials and permissions. In every list
// "*" means all.
type App struct {
	Name      string `mapstructure:"name" json:"name"`
	AccessKey string `mapstructure:"access-key" json:"access-key"`
	Secret    string `mapstructure:"secret" json:"secret"`
	// Produce are the topics the app may send to.
	Produce []string `mapstructure:"produce" json:"produce"`
	// ConsumeGroups and ConsumeTopics are the groups the app may consume
	// as and the topics it may read; a receive needs both.
	ConsumeGroups []string `mapstructure:"consume-groups" json:"consume-groups"`
	ConsumeTopics []string `mapstructure:"consume-topics" json:"consume-topics"`
}

// TLSConfig secures the listener; the zero value is plain TCP.
type TLSConfig struct {
	CertFile string `mapstructure:"cert-file" json:"cert-file"`
	KeyFile  string `mapstructure:"key-file" json:"key-file"`
	// ClientCAFile verifies client certificates (mTLS) when
	// ClientCertAuth is set.
	ClientCAFile   string `mapstructure:"client-ca-file" json:"client-ca-file"`
	ClientCertAuth bool   `mapstructure:"client-cert-auth" json:"client-cert-auth"`
}

// Enabled reports whether the listener uses TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// DefaultConfig returns the defaults of `duomq proxy`.
func DefaultConfig() Config {
	return Config{
		DC:            "idc-a",
		Listen:        "127.0.0.1:8081",
		MetricsListen: "127.0.0.1:8082",
		Etcd:          []string{"http://127.0.0.1:2379"},
		RouteRefresh:  time.Second,
		BrokerTimeout: 5 * time.Second,
		ClientTTL:     30 * time.Second,
		ConsumerTTL:   10 * time.Second,
		Limits: LimitsConfig{
			MaxBatch:         1024,
			MaxRequestBytes:  meta.MaxMessageBytesLimit + 4<<20,
			MaxReceive:       256,
			MaxWait:          30 * time.Second,
			DefaultInvisible: 30 * time.Second,
			MaxInvisible:     12 * time.Hour,
			MaxDeadLetters:   1000,
		},
		Breaker: BreakerConfig{Failures: 5, OpenFor: 5 * time.Second, Probes: 1},
		Auth:    AuthConfig{MaxSkew: 5 * time.Minute},
	}
}

// DefaultID is a proxy ID for a Config that names none: the DC and a
// random suffix.
func DefaultID(dc string) string {
	var b [4]byte
	rand.Read(b[:])
	return dc + "-" + hex.EncodeToString(b[:])
}

// Validate reports the first bad field, naming its key.
func (c *Config) Validate() error {
	if err := names.DC(c.DC); err != nil {
		return invalidConfig("dc %q: %v", c.DC, err)
	}
	if c.Listen == "" {
		return invalidConfig("listen is empty")
	}
	if len(c.Nameservers[c.DC]) == 0 {
		return invalidConfig("nameservers has no address for the proxy's own dc %q", c.DC)
	}
	for dc, addrs := range c.Nameservers {
		if err := names.DC(dc); err != nil {
			return invalidConfig("nameservers: dc %q: %v", dc, err)
		}
		if len(addrs) == 0 || slices.Contains(addrs, "") {
			return invalidConfig("nameservers: dc %q: empty address list or address", dc)
		}
	}
	durations := []struct {
		key string
		d   time.Duration
	}{
		{"route-refresh", c.RouteRefresh}, {"broker-timeout", c.BrokerTimeout},
		{"client-ttl", c.ClientTTL}, {"consumer-ttl", c.ConsumerTTL},
		{"limits.max-wait", c.Limits.MaxWait}, {"limits.default-invisible", c.Limits.DefaultInvisible},
		{"limits.max-invisible", c.Limits.MaxInvisible}, {"breaker.open-for", c.Breaker.OpenFor},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return invalidConfig("%s must be positive", d.key)
		}
	}
	if c.ConsumerTTL < 2*time.Second {
		return invalidConfig("consumer-ttl %v: must be at least 2s (etcd lease granularity)", c.ConsumerTTL)
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.Throttle.validate(); err != nil {
		return err
	}
	if c.Breaker.Failures == 0 || c.Breaker.Probes == 0 {
		return invalidConfig("breaker.failures and breaker.probes must be positive")
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	return c.TLS.validate()
}

func (l LimitsConfig) validate() error {
	switch {
	case l.MaxBatch <= 0 || l.MaxReceive <= 0 || l.MaxDeadLetters <= 0:
		return invalidConfig("limits.max-batch, limits.max-receive and limits.max-dead-letters must be positive")
	case l.MaxRequestBytes < 1<<20:
		return invalidConfig("limits.max-request-bytes %d is below 1 MiB", l.MaxRequestBytes)
	case l.DefaultInvisible > l.MaxInvisible:
		return invalidConfig("limits.default-invisible %v exceeds limits.max-invisible %v", l.DefaultInvisible, l.MaxInvisible)
	}
	return nil
}

func (t ThrottleConfig) validate() error {
	check := func(key string, r Rate) error {
		if r.Rate < 0 || r.Burst < 0 {
			return invalidConfig("throttle.%s: rate and burst must not be negative", key)
		}
		return nil
	}
	if err := check("topic", t.Topic); err != nil {
		return err
	}
	if err := check("client", t.Client); err != nil {
		return err
	}
	for name, r := range t.Topics {
		if err := check("topics."+name, r); err != nil {
			return err
		}
	}
	return nil
}

func (a AuthConfig) validate() error {
	if !a.Enabled {
		return nil
	}
	if a.MaxSkew <= 0 {
		return invalidConfig("auth.max-skew must be positive")
	}
	if len(a.Apps) == 0 {
		return invalidConfig("auth.enabled with no auth.apps: every call would be refused")
	}
	seen := map[string]bool{}
	for i, app := range a.Apps {
		if app.AccessKey == "" || app.Secret == "" {
			return invalidConfig("auth.apps[%d] (%s): access-key and secret are required", i, app.Name)
		}
		if seen[app.AccessKey] {
			return invalidConfig("auth.apps[%d] (%s): access-key %q used twice", i, app.Name, app.AccessKey)
		}
		seen[app.AccessKey] = true
	}
	return nil
}

func (t TLSConfig) validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return invalidConfig("tls.cert-file and tls.key-file go together")
	}
	if t.ClientCertAuth && (t.ClientCAFile == "" || !t.Enabled()) {
		return invalidConfig("tls.client-cert-auth needs tls.cert-file, tls.key-file and tls.client-ca-file")
	}
	return nil
}

func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("proxy config: %s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
}
