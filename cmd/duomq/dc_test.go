package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// `duomq dc sets` lists each replica set of a DC's placement: a set of two
// with its standby in sync, then after its leader's lease expired and the
// standby was promoted; a set whose members have not written its leader
// record yet; brokers alone in their sets, live or down.
func TestDCSets(t *testing.T) {
	ec := etcdtest.NewCluster(t, 1)
	cli0 := ec.Client(t)
	store := meta.New(cli0, meta.Options{})
	ctx := context.Background()
	for _, dc := range []string{"idc-a", "idc-b"} {
		if _, err := store.PutDC(ctx, meta.DC{Name: dc}); err != nil {
			t.Fatal(err)
		}
	}
	leases := map[string]clientv3.LeaseID{}
	alive := func(dc, b, set string) {
		t.Helper()
		l, err := cli0.Grant(ctx, 60)
		if err != nil {
			t.Fatal(err)
		}
		leases[b] = l.ID
		if err := store.PutAlive(ctx, l.ID, meta.Alive{Name: b, DC: dc, Address: b + ":1", Set: set}); err != nil {
			t.Fatal(err)
		}
	}
	stop := func(b string) {
		t.Helper()
		if _, err := cli0.Revoke(ctx, leases[b]); err != nil {
			t.Fatal(err)
		}
	}
	alive("idc-a", "broker-a-0", "set-a0")
	alive("idc-a", "broker-a-1", "set-a0")
	alive("idc-a", "broker-a-2", "")
	alive("idc-a", "broker-a-3", "set-a1")
	alive("idc-a", "broker-a-4", "set-a1")
	alive("idc-b", "broker-b-0", "")
	stop("broker-b-0")
	rec, rev, err := store.CreateReplicaSet(ctx, "idc-a", "set-a0", "broker-a-0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = store.SetReplicaSetInSync(ctx, rec, rev, []string{"broker-a-1"}, "broker-a-1 rejoined: it holds every record appended before the leader began waiting for it"); err != nil {
		t.Fatal(err)
	}
	etcd := strings.Join(ec.Endpoints(), ",")

	out, err := cli(t, "", "dc", "sets", "idc-a", "--etcd", etcd)
	if err != nil || !regexpLine(out, `DC\s+SET\s+LEADER\s+STATE\s+TERM\s+STANDBYS\s+UPDATED-AT\s+REASON`) ||
		!regexpLine(out, `idc-a\s+broker-a-2\s+broker-a-2\s+live\s+-\s+-\s+-\s+-`) ||
		!regexpLine(out, `idc-a\s+set-a0\s+broker-a-0\s+live\s+1\s+broker-a-1\(live,in-sync\)\s+\S+\s+broker-a-1 rejoined`) ||
		!regexpLine(out, `idc-a\s+set-a1\s+broker-a-3\s+no-leader\s+-\s+broker-a-4\(live,out-of-sync\)\s+-\s+no leader record yet`) ||
		strings.Contains(out, "idc-b") {
		t.Fatalf("dc sets idc-a: %v\n%s", err, out)
	}

	// The leader's lease expires; its in-sync standby is promoted.
	stop("broker-a-0")
	if rec, rev, err = store.GetReplicaSet(ctx, "idc-a", "set-a0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.PromoteReplicaSet(ctx, rec, rev, "broker-a-1", nil); err != nil {
		t.Fatal(err)
	}
	out, err = cli(t, "", "dc", "sets", "--etcd", etcd)
	if err != nil || !regexpLine(out, `idc-a\s+set-a0\s+broker-a-1\s+live\s+2\s+broker-a-0\(down,out-of-sync\)\s+\S+\s+promoted broker-a-1`) ||
		!regexpLine(out, `idc-b\s+broker-b-0\s+broker-b-0\s+down\s+-\s+-`) {
		t.Fatalf("dc sets after the promotion: %v\n%s", err, out)
	}
	out, err = cli(t, "", "dc", "sets", "idc-a", "--etcd", etcd, "-o", "json")
	var sets []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &sets) != nil || len(sets) != 3 {
		t.Fatalf("dc sets -o json: %v\n%s", err, out)
	}
	if s := sets[1]; s["set"] != "set-a0" || s["leader"] != "broker-a-1" || s["leader_live"] != true || s["term"] != 2.0 ||
		s["updated_at"] == nil || !strings.HasPrefix(s["reason"].(string), "promoted broker-a-1") ||
		fmt.Sprint(s["standbys"]) != "[map[in_sync:false live:false name:broker-a-0]]" {
		t.Fatalf("set-a0 as JSON: %v", s)
	}
	if _, err := cli(t, "", "dc", "sets", "idc-z", "--etcd", etcd); err == nil || !strings.Contains(err.Error(), "idc-z") {
		t.Fatalf("dc sets of an unknown DC: %v", err)
	}
}
