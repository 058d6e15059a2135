package member

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duomq/duomq/internal/names"
)

// Cluster states of a member at its first start.
const (
	// StateNew bootstraps a new cluster from InitialCluster.
	StateNew = "new"
	// StateExisting joins a cluster that already runs (the member was added
	// with etcdctl member add first).
	StateExisting = "existing"
)

// TLSConfig is the TLS of one side (clients or peers) of a member. The zero
// value means plain TCP, and the matching URL must then be http://.
type TLSConfig struct {
	CertFile      string `mapstructure:"cert-file" json:"cert-file"`
	KeyFile       string `mapstructure:"key-file" json:"key-file"`
	TrustedCAFile string `mapstructure:"trusted-ca-file" json:"trusted-ca-file"`
	// ClientCertAuth requires the other side to present a certificate
	// signed by TrustedCAFile.
	ClientCertAuth bool `mapstructure:"client-cert-auth" json:"client-cert-auth"`
}

// Enabled reports whether any TLS setting is present.
func (t TLSConfig) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.TrustedCAFile != "" || t.ClientCertAuth
}

// Config configures one member.
type Config struct {
	// Name is the member's site: idc-a, idc-b or witness.
	Name string `mapstructure:"name" json:"name"`
	// DataDir holds the member's WAL and database.
	DataDir string `mapstructure:"data-dir" json:"data-dir"`
	// ClientURL is where clients connect, e.g. http://127.0.0.1:2379. The
	// port must be fixed (not 0): other processes are configured with it.
	ClientURL string `mapstructure:"client-url" json:"client-url"`
	// PeerURL is where the other members connect, e.g.
	// http://127.0.0.1:2380; it must equal InitialCluster[Name].
	PeerURL string `mapstructure:"peer-url" json:"peer-url"`
	// InitialCluster maps every member's name to its peer URL.
	InitialCluster map[string]string `mapstructure:"initial-cluster" json:"initial-cluster"`
	// ClusterState is StateNew or StateExisting; ignored once DataDir holds
	// data.
	ClusterState string `mapstructure:"cluster-state" json:"cluster-state"`
	// ClusterToken keeps members of different clusters from joining each
	// other by mistake.
	ClusterToken string `mapstructure:"cluster-token" json:"cluster-token"`

	ClientTLS TLSConfig `mapstructure:"client-tls" json:"client-tls"`
	PeerTLS   TLSConfig `mapstructure:"peer-tls" json:"peer-tls"`

	// AuthToken is etcd's token provider once authentication is enabled:
	// "" (etcd's default, "simple") or "simple" or "jwt,<options>".
	AuthToken string `mapstructure:"auth-token" json:"auth-token"`

	// HeartbeatInterval and ElectionTimeout are etcd's raft timing. The
	// defaults suit loopback and a LAN; across DCs, set the heartbeat near
	// the round-trip time and the election timeout to 10x that.
	HeartbeatInterval time.Duration `mapstructure:"heartbeat-interval" json:"heartbeat-interval"`
	ElectionTimeout   time.Duration `mapstructure:"election-timeout" json:"election-timeout"`

	// CompactionRetention is how much revision history etcd keeps (periodic
	// auto-compaction); 0 keeps everything. Offsets are written every second,
	// so a bounded history keeps the database small.
	CompactionRetention time.Duration `mapstructure:"compaction-retention" json:"compaction-retention"`

	// StartTimeout bounds Start when the context has no earlier deadline.
	StartTimeout time.Duration `mapstructure:"start-timeout" json:"start-timeout"`

	// Logger receives etcd's warnings and errors; nil discards them.
	Logger *slog.Logger `mapstructure:"-" json:"-"`
}

// DefaultConfig returns the defaults; Name, DataDir, the URLs and
// InitialCluster must still be set.
func DefaultConfig() Config {
	return Config{
		ClusterState:        StateNew,
		ClusterToken:        "duomq-meta",
		HeartbeatInterval:   100 * time.Millisecond,
		ElectionTimeout:     1000 * time.Millisecond,
		CompactionRetention: 10 * time.Minute,
		StartTimeout:        60 * time.Second,
	}
}

// maxElectionTimeout is etcd's own limit.
const maxElectionTimeout = 50 * time.Second

// Validate reports the first problem of c, wrapping ErrInvalidConfig.
func (c *Config) Validate() error {
	for _, check := range []func() error{c.validateIdentity, c.validateURLs, c.validateCluster, c.validateTiming, c.validateAuth} {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
		}
	}
	return nil
}

func (c *Config) validateIdentity() error {
	if err := names.DC(c.Name); err != nil {
		return fmt.Errorf("name: %v", err)
	}
	if c.DataDir == "" {
		return fmt.Errorf("member %s: data-dir is empty", c.Name)
	}
	if c.ClusterToken == "" {
		return fmt.Errorf("member %s: cluster-token is empty", c.Name)
	}
	return nil
}

func (c *Config) validateURLs() error {
	if err := checkURL("client-url", c.ClientURL, c.ClientTLS); err != nil {
		return err
	}
	if err := checkURL("peer-url", c.PeerURL, c.PeerTLS); err != nil {
		return err
	}
	for _, t := range []struct {
		side string
		tls  TLSConfig
	}{{"client-tls", c.ClientTLS}, {"peer-tls", c.PeerTLS}} {
		if t.tls.Enabled() && (t.tls.CertFile == "" || t.tls.KeyFile == "") {
			return fmt.Errorf("%s: cert-file and key-file are both required", t.side)
		}
		if t.tls.ClientCertAuth && t.tls.TrustedCAFile == "" {
			return fmt.Errorf("%s: client-cert-auth needs trusted-ca-file", t.side)
		}
	}
	return nil
}

func (c *Config) validateCluster() error {
	if c.ClusterState != StateNew && c.ClusterState != StateExisting {
		return fmt.Errorf("cluster-state %q: use %q or %q", c.ClusterState, StateNew, StateExisting)
	}
	if len(c.InitialCluster) == 0 {
		return fmt.Errorf("initial-cluster is empty: name every member's peer URL")
	}
	for name, u := range c.InitialCluster {
		if err := names.DC(name); err != nil {
			return fmt.Errorf("initial-cluster: %v", err)
		}
		if err := checkURL("initial-cluster["+name+"]", u, c.PeerTLS); err != nil {
			return err
		}
	}
	own, ok := c.InitialCluster[c.Name]
	if !ok {
		return fmt.Errorf("initial-cluster does not name this member %q", c.Name)
	}
	if own != c.PeerURL {
		return fmt.Errorf("initial-cluster[%s] = %q differs from peer-url %q", c.Name, own, c.PeerURL)
	}
	return nil
}

func (c *Config) validateTiming() error {
	hb, el := c.HeartbeatInterval, c.ElectionTimeout
	if hb < time.Millisecond || hb%time.Millisecond != 0 {
		return fmt.Errorf("heartbeat-interval %v: must be a whole number of milliseconds >= 1ms", hb)
	}
	if el%time.Millisecond != 0 || el < 5*hb || el > maxElectionTimeout {
		return fmt.Errorf("election-timeout %v: must be whole milliseconds in [5 x heartbeat-interval, %v]", el, maxElectionTimeout)
	}
	if c.CompactionRetention < 0 {
		return fmt.Errorf("compaction-retention %v is negative", c.CompactionRetention)
	}
	if c.StartTimeout <= 0 {
		return fmt.Errorf("start-timeout %v must be positive", c.StartTimeout)
	}
	return nil
}

func (c *Config) validateAuth() error {
	switch {
	case c.AuthToken == "", c.AuthToken == "simple", strings.HasPrefix(c.AuthToken, "jwt,"):
		return nil
	}
	return fmt.Errorf("auth-token %q: use \"\", \"simple\" or \"jwt,<options>\"", c.AuthToken)
}

// checkURL requires scheme://host:port with an explicit non-zero port, and
// https exactly when TLS is configured.
func checkURL(field, raw string, tls TLSConfig) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q: want http://host:port or https://host:port", field, raw)
	}
	want := "http"
	if tls.Enabled() {
		want = "https"
	}
	if u.Scheme != want {
		return fmt.Errorf("%s %q: scheme must be %s (TLS configured: %v)", field, raw, want, tls.Enabled())
	}
	_, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return fmt.Errorf("%s %q: %v", field, raw, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%s %q: port must be a fixed number in 1..65535", field, raw)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("%s %q: no path allowed", field, raw)
	}
	return nil
}

// initialClusterString renders InitialCluster the way etcd takes it, sorted
// so that every member computes the same cluster ID input.
func (c *Config) initialClusterString() string {
	parts := make([]string, 0, len(c.InitialCluster))
	for name, u := range c.InitialCluster {
		parts = append(parts, name+"="+u)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
