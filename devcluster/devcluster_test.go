package devcluster

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/nameserverpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
	"github.com/duomq/duomq/internal/etcdtest"
	"github.com/duomq/duomq/internal/syncbuf"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "duomq-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "duomq")
	out, err := exec.Command("go", "build", "-o", binary, "github.com/duomq/duomq/cmd/duomq").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	etcdtest.Eventually(t, d, cond, "%s", what)
}

// startDev runs a supervisor until the test ends and returns its cluster file.
func startDev(t *testing.T) (*Supervisor, *syncbuf.Buffer, clusterfile.File) {
	t.Helper()
	return startDevWith(t, Options{})
}

// startDevWith is startDev with options (o.Dir defaults to a temporary
// directory).
func startDevWith(t *testing.T, o Options) (*Supervisor, *syncbuf.Buffer, clusterfile.File) {
	t.Helper()
	out := &syncbuf.Buffer{}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := NewSupervisor(SupervisorOptions{Options: o, Binary: binary, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervisor: %v", err)
		}
	})
	eventually(t, 90*time.Second, "cluster.json written", func() bool {
		_, err := os.Stat(s.ClusterFile())
		return err == nil
	})
	f, err := clusterfile.Load(s.ClusterFile())
	if err != nil {
		t.Fatal(err)
	}
	return s, out, f
}

func metaStore(t *testing.T, endpoints []string) *meta.Store {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return meta.New(cli, meta.Options{Timeout: 5 * time.Second})
}

func brokerHas(t *testing.T, addr, topic string, queues uint32) bool {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := brokerpb.NewBrokerClient(conn).ListTopics(ctx, &brokerpb.ListTopicsRequest{})
	if err != nil {
		return false
	}
	for _, tc := range res.Topics {
		if tc.Name == topic && tc.Queues == queues {
			return true
		}
	}
	return false
}

// TestDevTopology starts the three site processes, checks that a topic
// defined once in etcd reaches every broker of both DCs and the routes,
// that the keys are readable with etcdctl, that SIGKILL of a whole site
// leaves the metadata writable, and that a restarted site catches up.
func TestDevTopology(t *testing.T) {
	s, out, f := startDev(t)
	for _, site := range Sites {
		if f.Sites[site].PID == 0 || f.Sites[site].Etcd == "" {
			t.Fatalf("cluster.json site %s: %+v", site, f.Sites[site])
		}
	}
	store := metaStore(t, f.EtcdEndpoints())
	ctx := context.Background()
	if _, err := store.CreateTopic(ctx, meta.Topic{Name: "e2e", Queues: 3}); err != nil {
		t.Fatal(err)
	}
	for _, dc := range []string{SiteA, SiteB} {
		for _, addr := range f.Sites[dc].Brokers {
			eventually(t, 10*time.Second, "topic e2e on broker "+addr, func() bool { return brokerHas(t, addr, "e2e", 3) })
		}
		eventually(t, 10*time.Second, "route of e2e in "+dc, func() bool { return routeBrokers(t, f.Sites[dc].Nameserver, "e2e") == 2 })
	}
	checkEtcdctl(t, f.Sites[SiteA].Etcd)
	for _, dc := range []string{SiteA, SiteB} {
		eventually(t, 10*time.Second, "send through the proxy of "+dc, func() bool { return proxySendsLocally(t, f.Sites[dc].Proxy, "e2e", dc) })
	}

	victim := f.Sites[SiteB].PID
	devPost(t, f, "/sites/idc-b/kill", http.StatusOK)
	for name, pid := range f.Sites[SiteB].PIDs {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("%s (pid %d) of the killed site still runs: %v", name, pid, err)
		}
	}
	eventually(t, 10*time.Second, "supervisor reports the lost site", func() bool {
		return strings.Contains(out.String(), "site idc-b")
	})
	// A write in flight when the etcd leader dies fails at its deadline
	// (etcd cannot tell whether it applied), so writers retry with short
	// attempts; the metadata must take the write once a new leader is up.
	var werr error
	eventually(t, 20*time.Second, "metadata writable with one site lost", func() bool {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, werr = store.CreateTopic(wctx, meta.Topic{Name: "while-b-down", Queues: 2})
		return werr == nil || errors.Is(werr, meta.ErrExists)
	})
	devPost(t, f, "/sites/idc-b/restart", http.StatusOK)
	f2, err := clusterfile.Load(s.ClusterFile())
	if err != nil || f2.Sites[SiteB].PID == victim || f2.Sites[SiteB].PID == 0 {
		t.Fatalf("cluster.json after restart: %+v %v", f2.Sites[SiteB], err)
	}
	for _, addr := range f2.Sites[SiteB].Brokers {
		eventually(t, 10*time.Second, "restarted broker catches up", func() bool { return brokerHas(t, addr, "while-b-down", 2) })
	}
	devPost(t, f, "/sites/idc-a/restart", http.StatusConflict)
}

// devPost posts to the dev API, checks the status and returns the body.
func devPost(t *testing.T, f clusterfile.File, path string, want int) string {
	t.Helper()
	resp, err := http.Post(f.DevAPI+path, "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: HTTP %d %s, want %d", path, resp.StatusCode, b, want)
	}
	return string(b)
}

// proxySendsLocally sends one message through a DC's proxy and reports
// whether it was stored in that DC.
func proxySendsLocally(t *testing.T, addr, topic, dc string) bool {
	if addr == "" {
		t.Fatalf("cluster.json has no proxy for %s", dc)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := proxypb.NewProxyClient(conn).Send(ctx, &proxypb.SendRequest{Topic: topic, Messages: []*proxypb.Message{{Body: []byte("hi")}}})
	return err == nil && res.Results[0].Dc == dc && !res.Results[0].Fallback
}

func routeBrokers(t *testing.T, ns, topic string) int {
	conn, err := grpc.NewClient(ns, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := nameserverpb.NewNameserverClient(conn).GetRoute(ctx, &nameserverpb.GetRouteRequest{Topic: topic})
	if err != nil {
		return 0
	}
	return len(r.Brokers)
}

// checkEtcdctl reads a topic key with the standard etcdctl. The test tools
// (scripts/setup.sh) install it; CI must have it.
func checkEtcdctl(t *testing.T, endpoint string) {
	path, err := exec.LookPath("etcdctl")
	if errors.Is(err, exec.ErrNotFound) {
		if os.Getenv("CI") != "" {
			t.Fatal("etcdctl missing in CI (scripts/setup.sh installs etcd-client)")
		}
		t.Log("NOT RUN: etcdctl check (etcdctl not installed; scripts/setup.sh installs it)")
		return
	}
	cmd := exec.Command(path, "--endpoints", endpoint, "get", "/duomq/v1/topics/e2e", "--print-value-only")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), `"name":"e2e"`) {
		t.Fatalf("etcdctl get: %v: %s", err, b)
	}
}
