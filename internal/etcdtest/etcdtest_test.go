package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func put(t *testing.T, cli *clientv3.Client, k, v string, timeout time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(context.Background()), timeout)
	defer cancel()
	_, err := cli.Put(ctx, k, v)
	return err
}

func TestClusterKillRestart(t *testing.T) {
	start := time.Now()
	c := NewCluster(t, 3)
	t.Logf("cluster up in %v", time.Since(start))
	cli := c.Client(t)
	if err := put(t, cli, "k", "1", 5*time.Second); err != nil {
		t.Fatalf("put: %v", err)
	}

	leader := c.Leader(t, 5*time.Second)
	killed := time.Now()
	c.Kill(leader)
	Eventually(t, 10*time.Second, func() bool { return put(t, cli, "k", "2", time.Second) == nil },
		"no write after killing the leader %d", leader)
	t.Logf("writable %v after the leader was killed", time.Since(killed))

	other := (leader + 1) % 3
	c.Kill(other)
	if err := put(t, cli, "k", "3", 2*time.Second); err == nil {
		t.Fatal("write succeeded with 1 of 3 members")
	}

	r := time.Now()
	c.Restart(t, leader)
	t.Logf("restart took %v", time.Since(r))
	Eventually(t, 10*time.Second, func() bool { return put(t, cli, "k", "4", time.Second) == nil },
		"no write after restarting member %d", leader)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "4" {
		t.Fatalf("get = %v, %v", resp, err)
	}
}

func TestEndpointsAndSize(t *testing.T) {
	c := NewCluster(t, 1)
	if c.Size() != 1 || len(c.Endpoints()) != 1 || c.Member(0) == nil {
		t.Fatalf("size %d endpoints %v", c.Size(), c.Endpoints())
	}
	if err := put(t, c.Client(t), "a", "b", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
