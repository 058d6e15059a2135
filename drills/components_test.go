package drills

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/etcdtest"
)

// A component step that names a replica set acts on the broker its
// leader record names when the kill runs, and the restart on that same
// broker even after the set has a new leader.
func TestComponentStepNamesTheSetLeader(t *testing.T) {
	c := etcdtest.NewCluster(t, 1)
	cli := c.Client(t)
	store := meta.New(cli, meta.Options{Prefix: "/test/drills-sets/"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := store.PutDC(ctx, meta.DC{Name: "idc-a", State: meta.DCActive}); err != nil {
		t.Fatal(err)
	}
	// broker-a-1 registered first and created the set: it leads, not
	// the set's first member by name.
	for _, b := range []string{"broker-a-1", "broker-a-0"} {
		l, err := cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.PutAlive(ctx, l.ID, meta.Alive{Name: b, DC: "idc-a", Address: b + ":1", Set: "set-a-0"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := store.CreateReplicaSet(ctx, "idc-a", "set-a-0", "broker-a-1"); err != nil {
		t.Fatal(err)
	}
	r := &drillRun{store: store, setBroker: map[string]string{}}
	restart := Step{Action: "restart-component", Site: "idc-a", ReplicaSet: "set-a-0"}
	if _, err := r.componentName(ctx, restart, "idc-a"); err == nil || !strings.Contains(err.Error(), "no earlier kill") {
		t.Fatalf("restart before any kill: err %v, want a refusal", err)
	}
	kill := Step{Action: "kill-component", Site: "idc-a", ReplicaSet: "set-a-0"}
	if got, err := r.componentName(ctx, kill, "idc-a"); err != nil || got != "broker-a-1" {
		t.Fatalf("kill: %q, %v; want the set's leader broker-a-1", got, err)
	}
	if got, err := r.componentName(ctx, restart, "idc-a"); err != nil || got != "broker-a-1" {
		t.Fatalf("restart: %q, %v; want the broker killed, broker-a-1", got, err)
	}
	if _, err := r.componentName(ctx, Step{Action: "kill-component", Site: "idc-a", ReplicaSet: "set-a-9"}, "idc-a"); err == nil {
		t.Fatal("a set without a leader record: no error")
	}
	if got, err := r.componentName(ctx, Step{Action: "kill-component", Site: "idc-a", Component: "replicator"}, "idc-a"); err != nil || got != "replicator" {
		t.Fatalf("a named component: %q, %v", got, err)
	}
}
