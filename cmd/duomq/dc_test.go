package main

import (
	"context"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

// `duomq dc brokers` shows a DC's placement, a dead broker included with
// its queues; `duomq dc forget-broker` refuses a live broker and removes a
// dead one, whose queues then go to the others.
func TestDCBrokersAndForgetBroker(t *testing.T) {
	ec := etcdtest.NewCluster(t, 1)
	cli0 := ec.Client(t)
	store := meta.New(cli0, meta.Options{})
	ctx := context.Background()
	if _, err := store.PutDC(ctx, meta.DC{Name: "idc-a"}); err != nil {
		t.Fatal(err)
	}
	leases := map[string]clientv3.LeaseID{}
	for _, b := range []string{"broker-a-0", "broker-a-1"} {
		l, err := cli0.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		leases[b] = l.ID
		if err := store.PutAlive(ctx, l.ID, meta.Alive{Name: b, DC: "idc-a", Address: b + ":1"}); err != nil {
			t.Fatal(err)
		}
	}
	etcd := strings.Join(ec.Endpoints(), ",")
	if _, err := cli0.Revoke(ctx, leases["broker-a-1"]); err != nil {
		t.Fatal(err)
	}

	out, err := cli(t, "", "dc", "brokers", "idc-a", "--etcd", etcd, "--queues", "4")
	if err != nil || !regexpLine(out, `broker-a-0\s+live\s+broker-a-0:1\s+0,2`) || !regexpLine(out, `broker-a-1\s+down\s+-\s+1,3`) {
		t.Fatalf("dc brokers: %v\n%s", err, out)
	}
	if _, err := cli(t, "", "dc", "forget-broker", "idc-a", "broker-a-0", "--etcd", etcd); err == nil || !strings.Contains(err.Error(), "is live") {
		t.Fatalf("forget a live broker: %v", err)
	}
	if out, err := cli(t, "", "dc", "forget-broker", "idc-a", "broker-a-1", "--etcd", etcd); err != nil || !strings.Contains(out, "forgotten") {
		t.Fatalf("forget a dead broker: %v\n%s", err, out)
	}
	out, err = cli(t, "", "dc", "brokers", "idc-a", "--etcd", etcd, "--queues", "4")
	if err != nil || !regexpLine(out, `broker-a-0\s+live\s+broker-a-0:1\s+0,1,2,3`) || strings.Contains(out, "broker-a-1") {
		t.Fatalf("dc brokers after forget: %v\n%s", err, out)
	}
}
