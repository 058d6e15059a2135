package member

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/duomq/duomq/internal/freeport"
)

// freePort picks a port below the ephemeral range (package freeport), so
// nothing else takes it before the member binds it.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := freeport.Take(1)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

func peerURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// singleConfig is a one-member cluster on free ports.
func singleConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Name = "idc-a"
	cfg.DataDir = t.TempDir()
	cfg.ClientURL = peerURL(freePort(t))
	cfg.PeerURL = peerURL(freePort(t))
	cfg.InitialCluster = map[string]string{"idc-a": cfg.PeerURL}
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 20*time.Millisecond, 200*time.Millisecond
	return cfg
}

func TestValidate(t *testing.T) {
	base := Config{
		Name: "idc-a", DataDir: "/data", ClusterState: StateNew, ClusterToken: "tok",
		ClientURL: "http://127.0.0.1:2379", PeerURL: "http://127.0.0.1:2380",
		InitialCluster: map[string]string{
			"idc-a": "http://127.0.0.1:2380", "idc-b": "http://127.0.0.1:2480", "witness": "http://127.0.0.1:2580",
		},
		HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: time.Second, StartTimeout: time.Second,
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	tlsFiles := TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", TrustedCAFile: "ca.pem", ClientCertAuth: true}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"bad name", func(c *Config) { c.Name = "idc a" }, false},
		{"no data dir", func(c *Config) { c.DataDir = "" }, false},
		{"no token", func(c *Config) { c.ClusterToken = "" }, false},
		{"client url without port", func(c *Config) { c.ClientURL = "http://127.0.0.1" }, false},
		{"client url port 0", func(c *Config) { c.ClientURL = "http://127.0.0.1:0" }, false},
		{"client url scheme", func(c *Config) { c.ClientURL = "unix://x:1" }, false},
		{"client url path", func(c *Config) { c.ClientURL = "http://127.0.0.1:1/x" }, false},
		{"peer url mismatch", func(c *Config) { c.PeerURL = "http://127.0.0.1:2381" }, false},
		{"not in cluster", func(c *Config) { c.InitialCluster = map[string]string{"idc-b": "http://127.0.0.1:2480"} }, false},
		{"empty cluster", func(c *Config) { c.InitialCluster = nil }, false},
		{"bad cluster url", func(c *Config) {
			c.InitialCluster = map[string]string{"idc-a": c.PeerURL, "idc-b": "127.0.0.1:2480"}
		}, false},
		{"bad state", func(c *Config) { c.ClusterState = "fresh" }, false},
		{"existing", func(c *Config) { c.ClusterState = StateExisting }, true},
		{"heartbeat zero", func(c *Config) { c.HeartbeatInterval = 0 }, false},
		{"heartbeat sub-ms", func(c *Config) { c.HeartbeatInterval = 1500 * time.Microsecond }, false},
		{"election too short", func(c *Config) { c.ElectionTimeout = 400 * time.Millisecond }, false},
		{"election too long", func(c *Config) { c.ElectionTimeout = time.Minute }, false},
		{"negative compaction", func(c *Config) { c.CompactionRetention = -1 }, false},
		{"no start timeout", func(c *Config) { c.StartTimeout = 0 }, false},
		{"auth simple", func(c *Config) { c.AuthToken = "simple" }, true},
		{"auth jwt", func(c *Config) { c.AuthToken = "jwt,pub-key=a,priv-key=b,sign-method=RS256" }, true},
		{"auth bad", func(c *Config) { c.AuthToken = "oauth" }, false},
		{"tls with http url", func(c *Config) { c.ClientTLS = tlsFiles }, false},
		{"tls with https url", func(c *Config) { c.ClientTLS = tlsFiles; c.ClientURL = "https://127.0.0.1:2379" }, true},
		{"https without tls", func(c *Config) { c.ClientURL = "https://127.0.0.1:2379" }, false},
		{"tls without key", func(c *Config) {
			c.ClientTLS = TLSConfig{CertFile: "c.pem"}
			c.ClientURL = "https://127.0.0.1:2379"
		}, false},
		{"cert auth without ca", func(c *Config) {
			c.ClientTLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", ClientCertAuth: true}
			c.ClientURL = "https://127.0.0.1:2379"
		}, false},
		{"peer tls needs https peers", func(c *Config) {
			c.PeerTLS = tlsFiles
			c.PeerURL = "https://127.0.0.1:2380"
			c.InitialCluster = map[string]string{"idc-a": c.PeerURL}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.InitialCluster = map[string]string{}
			for k, v := range base.InitialCluster {
				c.InitialCluster[k] = v
			}
			tc.mod(&c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestStartCloseSingle(t *testing.T) {
	var logs bytes.Buffer
	cfg := singleConfig(t)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-m.Ready():
	default:
		t.Fatal("Start returned before Ready")
	}
	if m.ClientURL() != cfg.ClientURL || m.Name() != "idc-a" || m.ID() == "" {
		t.Fatalf("ClientURL %q Name %q ID %q", m.ClientURL(), m.Name(), m.ID())
	}
	waitLeader(t, m)

	// A client left open does not make Close wait etcd's request timeout.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
	watch := cli.Watch(ctx, "k")
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close with an open watch took %v", took)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	m.HardStop() // no-op after Close
	_ = watch
	for range m.Err() { // closed once the member has stopped
	}
	// etcd's info lines stay out of the log; only warnings pass.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line != "" && !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			t.Fatalf("etcd logged below warn: %s", line)
		}
	}
	if !strings.Contains(logs.String(), "component=meta") || !strings.Contains(logs.String(), "subsystem=etcd") || !strings.Contains(logs.String(), "member=idc-a") {
		t.Fatalf("bridged lines lack the component, subsystem and member: %s", logs.String())
	}
}

func waitLeader(t *testing.T, m *Member) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !m.IsLeader() || !m.HasLeader() {
		if time.Now().After(deadline) {
			t.Fatal("single member did not become leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHardStopRestart(t *testing.T) {
	cfg := singleConfig(t)
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitLeader(t, m)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "before"); err != nil {
		t.Fatalf("put: %v", err)
	}
	start := time.Now()
	m.HardStop()
	m.HardStop()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("HardStop took %v", took)
	}

	// Same data directory and ports: the data is still there.
	cfg.ClusterState = StateExisting
	m2, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer m2.Close()
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before" {
		t.Fatalf("after restart: %v, %v", resp, err)
	}
}

func TestStartWithoutQuorum(t *testing.T) {
	cfg := singleConfig(t)
	// Two more members that never start: no quorum, never ready.
	cfg.InitialCluster["idc-b"] = peerURL(freePort(t))
	cfg.InitialCluster["witness"] = peerURL(freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	m, err := Start(ctx, cfg)
	if !errors.Is(err, ErrNotReady) || m != nil {
		t.Fatalf("Start = %v, %v; want ErrNotReady", m, err)
	}
	if !strings.Contains(err.Error(), "quorum") {
		t.Fatalf("error does not explain: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Start without quorum returned after %v", took)
	}
}

func TestStartInvalid(t *testing.T) {
	_, err := Start(context.Background(), Config{})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start(Config{}) = %v", err)
	}
}
