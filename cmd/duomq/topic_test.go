package main

import (
	"context"
	"strings"
	"testing"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

func TestTopicSyncPolicyFlag(t *testing.T) {
	ec := etcdtest.NewCluster(t, 1)
	store := meta.New(ec.Client(t), meta.Options{})
	ctx := context.Background()
	if _, err := store.PutDC(ctx, meta.DC{Name: "idc-a"}); err != nil {
		t.Fatal(err)
	}
	etcd := strings.Join(ec.Endpoints(), ",")
	policy := func() meta.SyncPolicy {
		t.Helper()
		tp, _, err := store.GetTopic(ctx, "ledger")
		if err != nil {
			t.Fatal(err)
		}
		return tp.SyncPolicy
	}

	out, err := cli(t, "", "topic", "create", "ledger", "--etcd", etcd, "--queues", "2", "--ordered", "--primary", "idc-a", "--sync-policy", "degrade")
	if err != nil || policy() != meta.SyncPolicyDegrade || !strings.Contains(out, "SYNC-POLICY") || !strings.Contains(out, "degrade") {
		t.Fatalf("create --sync-policy degrade: %v, policy %q\n%s", err, policy(), out)
	}
	if _, err := cli(t, "", "topic", "update", "ledger", "--etcd", etcd, "--sync-policy", "fail"); err != nil || policy() != meta.SyncPolicyFail {
		t.Fatalf("update --sync-policy fail: %v, policy %q", err, policy())
	}
	if _, err := cli(t, "", "topic", "update", "ledger", "--etcd", etcd, "--sync-policy", "sometimes"); err == nil || !strings.Contains(err.Error(), "use fail or degrade") {
		t.Fatalf("update with a bad policy: %v", err)
	}
	// Leaving sync replication drops the policy, which applies to it only.
	if _, err := cli(t, "", "topic", "update", "ledger", "--etcd", etcd, "--replication", "async"); err != nil || policy() != "" {
		t.Fatalf("update --replication async: %v, policy %q", err, policy())
	}
	if _, err := cli(t, "", "topic", "create", "clicks", "--etcd", etcd, "--queues", "1", "--replication", "async", "--sync-policy", "degrade"); err == nil ||
		!strings.Contains(err.Error(), "replication sync only") {
		t.Fatalf("create an async topic with a sync policy: %v", err)
	}
}
