package meta

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/etcdtest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// newStore gives each test its own key prefix, so tests share a cluster
// without seeing each other's keys.
func newStore(t testing.TB, cli *clientv3.Client) *Store {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return New(cli, Options{Prefix: "/test/" + name + "/", Logger: discard})
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// etcdRev is the cluster's current revision; an unchanged revision proves
// that nothing was written.
func etcdRev(t testing.TB, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(testCtx(t), "/revision-probe")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	return resp.Header.Revision
}

// must fails t on an error and returns the revision: must(t)(s.PutDC(...)).
func must(t testing.TB) func(int64, error) int64 {
	return func(rev int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return rev
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// sharedCluster starts one cluster for the subtests of a test.
func sharedCluster(t *testing.T) (*etcdtest.Cluster, *clientv3.Client) {
	t.Helper()
	c := etcdtest.NewCluster(t, 3)
	return c, c.Client(t)
}

// seed creates two DCs and an unordered and an ordered topic.
func seed(t testing.TB, s *Store) {
	t.Helper()
	ctx := testCtx(t)
	must(t)(s.PutDC(ctx, DC{Name: "idc-a", CIDRs: []string{"10.1.0.0/16"}}))
	must(t)(s.PutDC(ctx, DC{Name: "idc-b", CIDRs: []string{"10.2.0.0/16"}}))
	must(t)(s.CreateTopic(ctx, Topic{Name: "events", Queues: 4}))
	must(t)(s.CreateTopic(ctx, Topic{Name: "orders", Queues: 8, Ordered: true, Primary: "idc-a"}))
}

func shortCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
