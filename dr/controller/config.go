package controller

import (
	"fmt"
	"net/url"
	"time"
)

// Config tunes a controller candidate. Durations are how long the
// controller waits for things outside it (brokers, etcd, followers).
type Config struct {
	// ID names this candidate in the election and the audit log
	// (default: host name and process id).
	ID string `mapstructure:"id" json:"id"`
	// Site is the site the candidate runs in (idc-a, idc-b, witness): the
	// site field of its log lines. Empty: the logger passed in names it.
	Site string `mapstructure:"site" json:"site"`
	// APIURL is where other candidates send clients when this one leads:
	// the URL of this candidate's API as the others reach it.
	APIURL string `mapstructure:"api-url" json:"api-url"`
	// ElectionTTL is the TTL of the election session (whole seconds, at
	// least 1s): a leader that dies without resigning is replaced after
	// about this long.
	ElectionTTL time.Duration `mapstructure:"election-ttl" json:"election-ttl"`
	// DownAfter is how long a DC must be unhealthy (see MinLiveBrokers,
	// MinLiveProxies, EtcdMemberRequired) before it counts as down (and,
	// with AutoFailback, how long a down DC must be healthy again before
	// it fails back).
	DownAfter time.Duration `mapstructure:"down-after" json:"down-after"`
	// MinLiveBrokers: a DC with fewer live brokers (liveness records) is
	// unhealthy. Default 1: a DC is unhealthy when it has none. A DC
	// that is unhealthy for down-after counts as down; one whose brokers
	// are still live is then failed over the forced way (block, fence,
	// wait out the lease).
	MinLiveBrokers int `mapstructure:"min-live-brokers" json:"min-live-brokers"`
	// MinLiveProxies: a DC with fewer live proxies (their presence
	// records) is unhealthy. Default 0: proxies are not counted.
	MinLiveProxies int `mapstructure:"min-live-proxies" json:"min-live-proxies"`
	// EtcdMemberRequired: a DC none of whose etcd members (named <dc> or
	// <dc>-...) this candidate can reach is unhealthy. Default false.
	EtcdMemberRequired bool `mapstructure:"etcd-member-required" json:"etcd-member-required"`
	// EtcdProbeInterval is how often the etcd members are probed for
	// etcd-member-required.
	EtcdProbeInterval time.Duration `mapstructure:"etcd-probe-interval" json:"etcd-probe-interval"`
	// StartupGrace is how long a DC that this candidate has not seen
	// alive since it started may have no broker before it counts as down,
	// so brokers that start after the controller are not failed over.
	StartupGrace time.Duration `mapstructure:"startup-grace" json:"startup-grace"`
	// LeaseTTL is the brokers' liveness lease TTL: a broker that cannot
	// renew its lease stops accepting ordered writes within it. A forced
	// failover of a DC that still has alive records waits this long after
	// blocking the topic unless every alive broker was fenced.
	LeaseTTL time.Duration `mapstructure:"lease-ttl" json:"lease-ttl"`
	// AutoFailover moves the ordered topics of a DC that is down to
	// another DC and marks it down.
	AutoFailover bool `mapstructure:"auto-failover" json:"auto-failover"`
	// AutoFailback returns a down DC that is healthy again to
	// active and moves its ordered topics home.
	AutoFailback bool `mapstructure:"auto-failback" json:"auto-failback"`
	// CatchUpTimeout bounds a switchover's write pause waiting for the
	// target's followers; past it the switchover rolls back.
	CatchUpTimeout time.Duration `mapstructure:"catch-up-timeout" json:"catch-up-timeout"`
	// FailbackTimeout bounds a failback's wait, before it blocks writes,
	// for the home DC's followers to catch up with the current primary.
	FailbackTimeout time.Duration `mapstructure:"failback-timeout" json:"failback-timeout"`
	// FenceTimeout bounds each Fence call.
	FenceTimeout time.Duration `mapstructure:"fence-timeout" json:"fence-timeout"`
	// BrokerTimeout bounds every other broker call (replica state,
	// offsets for the status).
	BrokerTimeout time.Duration `mapstructure:"broker-timeout" json:"broker-timeout"`
	// MetaTimeout bounds each metadata request; a step whose request
	// timed out re-reads and retries while the controller leads.
	MetaTimeout time.Duration `mapstructure:"meta-timeout" json:"meta-timeout"`
	// PollInterval is how often a catch-up wait asks followers again.
	PollInterval time.Duration `mapstructure:"poll-interval" json:"poll-interval"`
	// MaxParallel bounds the transitions that run at once (a DC's topics).
	MaxParallel int `mapstructure:"max-parallel" json:"max-parallel"`
	// AuditKeep is how many audit records the metadata keeps: the oldest
	// beyond it are deleted as new ones are written.
	AuditKeep int `mapstructure:"audit-keep" json:"audit-keep"`
	// PreferredEtcdLeader names the etcd member (site) the leading
	// controller keeps the metadata quorum's leadership on, typically the
	// witness: losing a DC then costs no etcd election, whose new leader
	// would extend every lease (the dead DC's too) by a full TTL before
	// they can expire. Empty: leadership is left where etcd puts it.
	PreferredEtcdLeader string `mapstructure:"preferred-etcd-leader" json:"preferred-etcd-leader"`
	// PreferredLeader is the candidate id that should lead (typically the
	// witness's): another leader hands over, between transitions, while it
	// campaigns. A leader in the DC that is cut off would otherwise hold
	// on until its election session expires, delaying the failover of
	// that very DC. Empty: whoever is elected leads.
	PreferredLeader string `mapstructure:"preferred-leader" json:"preferred-leader"`
}

// DefaultConfig returns the defaults of `duomq controller`.
func DefaultConfig() Config {
	return Config{
		ElectionTTL:       2 * time.Second,
		DownAfter:         time.Second,
		StartupGrace:      10 * time.Second,
		MinLiveBrokers:    1,
		EtcdProbeInterval: time.Second,
		LeaseTTL:          2 * time.Second,
		AutoFailover:      true,
		CatchUpTimeout:    10 * time.Second,
		FailbackTimeout:   time.Minute,
		FenceTimeout:      time.Second,
		BrokerTimeout:     2 * time.Second,
		MetaTimeout:       time.Second,
		PollInterval:      20 * time.Millisecond,
		MaxParallel:       8,
		AuditKeep:         10000,
	}
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	if c.ElectionTTL < time.Second || c.ElectionTTL%time.Second != 0 {
		return invalidConfig("election-ttl %v: use whole seconds, at least 1s", c.ElectionTTL)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"down-after", c.DownAfter}, {"lease-ttl", c.LeaseTTL}, {"catch-up-timeout", c.CatchUpTimeout},
		{"failback-timeout", c.FailbackTimeout}, {"fence-timeout", c.FenceTimeout},
		{"broker-timeout", c.BrokerTimeout}, {"meta-timeout", c.MetaTimeout}, {"poll-interval", c.PollInterval},
	} {
		if d.v <= 0 {
			return invalidConfig("%s %v: must be positive", d.name, d.v)
		}
	}
	if c.MinLiveBrokers < 1 {
		return invalidConfig("min-live-brokers %d: at least 1", c.MinLiveBrokers)
	}
	if c.MinLiveProxies < 0 {
		return invalidConfig("min-live-proxies %d: must not be negative", c.MinLiveProxies)
	}
	if c.EtcdProbeInterval <= 0 {
		return invalidConfig("etcd-probe-interval %v: must be positive", c.EtcdProbeInterval)
	}
	if c.StartupGrace < 0 {
		return invalidConfig("startup-grace %v: must not be negative", c.StartupGrace)
	}
	if c.PollInterval > c.CatchUpTimeout {
		return invalidConfig("poll-interval %v is longer than catch-up-timeout %v", c.PollInterval, c.CatchUpTimeout)
	}
	if c.AuditKeep < 1 {
		return invalidConfig("audit-keep %d: at least 1", c.AuditKeep)
	}
	if c.MaxParallel < 1 {
		return invalidConfig("max-parallel %d: at least 1", c.MaxParallel)
	}
	if len(c.ID) > 200 {
		return invalidConfig("id is longer than 200 characters")
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalidConfig("api-url %q: use http://HOST:PORT or https://HOST:PORT", c.APIURL)
		}
	}
	return nil
}

func invalidConfig(format string, args ...any) error {
	return fmt.Errorf("controller config: %s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
}
