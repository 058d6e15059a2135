package devcluster

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/internal/clusterfile"
)

// TestComponentsAndWANLatency runs the local topology with WAN relays and
// checks that the controller and replicator are processes of their own
// that the dev API stops, continues, kills and restarts, and that an
// added WAN latency shows in the round trip of a cross-site broker call
// while cross-site broker traffic goes through the relays.
func TestComponentsAndWANLatency(t *testing.T) {
	s, _, f := startDevWith(t, Options{WAN: true})
	// The etcd leadership is on the witness before the topology is ready.
	cli := metaStore(t, f.EtcdEndpoints()).Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := cli.Status(ctx, f.Sites[SiteWitness].Etcd); err != nil || st.Leader != st.Header.MemberId {
		t.Fatalf("etcd leader at start: %+v, %v; want the witness", st, err)
	}
	for _, site := range Sites {
		want := []string{"site", ComponentController}
		if site != SiteWitness {
			want = append(want, ComponentReplicator)
		}
		for _, c := range want {
			if f.Sites[site].PIDs[c] == 0 {
				t.Fatalf("cluster.json %s: no pid of %s: %v", site, c, f.Sites[site].PIDs)
			}
		}
	}

	repl := f.Sites[SiteB].PIDs[ComponentReplicator]
	devPost(t, f, "/sites/idc-b/components/replicator/pause", http.StatusOK)
	eventually(t, 5*time.Second, "paused replicator in state T", func() bool { return procState(repl) == "T" })
	devPost(t, f, "/sites/idc-b/components/replicator/resume", http.StatusOK)
	eventually(t, 5*time.Second, "resumed replicator out of state T", func() bool { return procState(repl) != "T" })

	ctl := f.Sites[SiteWitness].PIDs[ComponentController]
	devPost(t, f, "/sites/witness/components/controller/kill", http.StatusOK)
	if err := syscall.Kill(ctl, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("killed controller (pid %d) still runs: %v", ctl, err)
	}
	devPost(t, f, "/sites/witness/components/controller/kill", http.StatusConflict)
	devPost(t, f, "/sites/witness/components/broker/kill", http.StatusNotFound)
	devPost(t, f, "/sites/witness/components/controller/explode", http.StatusBadRequest)
	devPost(t, f, "/sites/witness/components/controller/restart", http.StatusOK)
	f2, err := clusterfile.Load(s.ClusterFile())
	if err != nil {
		t.Fatal(err)
	}
	if p := f2.Sites[SiteWitness].PIDs[ComponentController]; p == 0 || p == ctl {
		t.Fatalf("controller pid after restart: %d (was %d)", p, ctl)
	}
	if _, err := http.Get(f2.Sites[SiteWitness].Controller + "/v1/status"); err != nil {
		t.Fatalf("restarted controller does not answer: %v", err)
	}

	// Replication of an ordered topic crosses the relays.
	createOrdered(t, f, "over-wan", 2, SiteA)
	eventually(t, 20*time.Second, "replicator of idc-b connected through a relay", func() bool {
		for _, lk := range s.wan.links {
			if lk.from == SiteB && lk.to == SiteA && lk.accepted.Load() > 0 {
				return true
			}
		}
		return false
	})

	spec, err := LoadSpec(specPath(s.specs[SiteB]))
	if err != nil {
		t.Fatal(err)
	}
	target := f.Sites[SiteA].Brokers[0]
	via := spec.WANRoutes[target]
	if via == "" {
		t.Fatalf("idc-b's spec has no relay for %s: %v", target, spec.WANRoutes)
	}
	base := rpcTime(t, via)
	const added = 40 * time.Millisecond
	devPost(t, f, "/wan?a=idc-b&b=idc-a&delay=40ms", http.StatusOK)
	slow := rpcTime(t, via)
	if slow < added || slow-base < added*3/4 {
		t.Fatalf("round trip through the relay %v with %v added (was %v)", slow, added, base)
	}
	devPost(t, f, "/wan?a=idc-b&b=idc-a&delay=0s", http.StatusOK)
	if fast := rpcTime(t, via); fast >= added {
		t.Fatalf("round trip %v after the latency was removed", fast)
	}
	devPost(t, f, "/wan?a=idc-b&b=idc-b&delay=1ms", http.StatusBadRequest)
	devPost(t, f, "/wan?a=idc-b&b=idc-a&delay=soon", http.StatusBadRequest)
	t.Logf("broker call through the relay: %v plain, %v with +%v", base, slow, added)
}

// procState is the state letter of a process in /proc ("" when gone).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+3 > len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// rpcTime is the fastest of five ListTopics round trips to addr on one
// connection (the first call, which dials, is not counted).
func rpcTime(t *testing.T, addr string) time.Duration {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := brokerpb.NewBrokerClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.ListTopics(ctx, &brokerpb.ListTopicsRequest{}); err != nil {
		t.Fatalf("ListTopics through %s: %v", addr, err)
	}
	best := time.Hour
	for range 5 {
		start := time.Now()
		if _, err := c.ListTopics(ctx, &brokerpb.ListTopicsRequest{}); err != nil {
			t.Fatalf("ListTopics through %s: %v", addr, err)
		}
		best = min(best, time.Since(start))
	}
	return best
}
