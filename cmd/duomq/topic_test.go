package main

import (
	"context"
	"encoding/json"
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

// --min-in-sync-replicas is stored, shown (1 when not set) and changed by
// update; values the store refuses fail with its reason.
func TestTopicMinInSyncReplicasFlag(t *testing.T) {
	ec := etcdtest.NewCluster(t, 1)
	store := meta.New(ec.Client(t), meta.Options{})
	ctx := context.Background()
	if _, err := store.PutDC(ctx, meta.DC{Name: "idc-a"}); err != nil {
		t.Fatal(err)
	}
	etcd := strings.Join(ec.Endpoints(), ",")
	floor := func() int {
		t.Helper()
		tp, _, err := store.GetTopic(ctx, "ledger")
		if err != nil {
			t.Fatal(err)
		}
		return tp.MinInSyncReplicas
	}

	// RocketMQ's 2-3 mode: the leader and one more copy, its standby or
	// the other DC.
	out, err := cli(t, "", "topic", "create", "ledger", "--etcd", etcd, "--queues", "2", "--ordered", "--primary", "idc-a",
		"--replication", "sync", "--min-in-sync-replicas", "2")
	if err != nil || floor() != 2 || !strings.Contains(out, "MIN-IN-SYNC") || !regexpLine(out, `ledger\s+true\s+2\s+idc-a\s+sync\s+fail\s+2\s`) {
		t.Fatalf("create --min-in-sync-replicas 2: %v, floor %d\n%s", err, floor(), out)
	}
	if _, err := cli(t, "", "topic", "update", "ledger", "--etcd", etcd, "--min-in-sync-replicas", "3"); err != nil || floor() != 3 {
		t.Fatalf("update --min-in-sync-replicas 3: %v, floor %d", err, floor())
	}
	for _, bad := range []string{"9", "-1"} {
		if _, err := cli(t, "", "topic", "update", "ledger", "--etcd", etcd, "--min-in-sync-replicas", bad); err == nil ||
			!strings.Contains(err.Error(), "min in-sync replicas "+bad+" not in [1, 8]") {
			t.Fatalf("update --min-in-sync-replicas %s: %v", bad, err)
		}
	}
	if floor() != 3 {
		t.Fatalf("a refused update changed the floor to %d", floor())
	}
	out, err = cli(t, "", "topic", "describe", "ledger", "--etcd", etcd, "-o", "json")
	var v struct {
		Topic map[string]any `json:"topic"`
	}
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || v.Topic["min_in_sync_replicas"] != 3.0 {
		t.Fatalf("describe -o json: %v\n%s", err, out)
	}

	// Not set, it is shown as its meaning: the leader's copy alone.
	if _, err := cli(t, "", "topic", "create", "clicks", "--etcd", etcd, "--queues", "1"); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "", "topic", "list", "--etcd", etcd)
	if err != nil || !regexpLine(out, `clicks\s+false\s+1\s+-\s+none\s+-\s+1\s`) || !regexpLine(out, `ledger\s.*\s3\s`) {
		t.Fatalf("topic list: %v\n%s", err, out)
	}
	out, err = cli(t, "", "topic", "list", "--etcd", etcd, "-o", "json")
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || list[0]["min_in_sync_replicas"] != 1.0 {
		t.Fatalf("topic list -o json: %v\n%s", err, out)
	}
	if _, err := cli(t, "", "topic", "update", "clicks", "--etcd", etcd, "--min-in-sync-replicas", "2"); err == nil ||
		!strings.Contains(err.Error(), "with replication none") {
		t.Fatalf("a floor on a topic without replication: %v", err)
	}
}
