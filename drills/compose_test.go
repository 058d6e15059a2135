package drills

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duomq/duomq/internal/clusterfile"
)

// fakeDocker answers docker commands from a script and records them.
type fakeDocker struct {
	mu     sync.Mutex
	calls  []string
	answer func(args []string) (string, error)
}

func (f *fakeDocker) run(_ context.Context, args ...string) (string, error) {
	f.mu.Lock()
	f.calls = append(f.calls, strings.Join(args, " "))
	f.mu.Unlock()
	return f.answer(args)
}

// since returns the calls made after the first n.
func (f *fakeDocker) since(n int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls[n:]...)
}

func composeCluster() clusterfile.File {
	return clusterfile.File{
		Sites: map[string]clusterfile.Site{"idc-a": {}, "idc-b": {}, "witness": {}},
		Compose: &clusterfile.Compose{Project: "p", Sites: map[string]clusterfile.ComposeSite{
			"idc-a":   {Containers: map[string]string{"etcd": "etcd-a", "broker-0": "broker-a-0", "proxy": "proxy-a"}, WAN: "wan"},
			"idc-b":   {Containers: map[string]string{"etcd": "etcd-b"}, WAN: "wan"},
			"witness": {Containers: map[string]string{"etcd": "plain-etcd-w"}, WAN: "wan"},
		}},
	}
}

// projectDocker knows project p (Compose v1 names) and a container
// outside it.
func projectDocker(extra func(args []string) (string, error)) *fakeDocker {
	return &fakeDocker{answer: func(args []string) (string, error) {
		switch {
		case args[0] == "ps":
			return "p_etcd-a_1\tetcd-a\np_broker-a-0_1\tbroker-a-0\np_proxy-a_1\tproxy-a\np_etcd-b_1\tetcd-b\n", nil
		case args[0] == "network" && args[1] == "ls":
			return "p_wan\twan\np_idc-a\tidc-a\n", nil
		case args[0] == "inspect" && args[len(args)-1] == "plain-etcd-w" && args[2] == "container":
			return "/plain-etcd-w\n", nil
		}
		if extra != nil {
			return extra(args)
		}
		return "", fmt.Errorf("unexpected docker %v", args)
	}}
}

func openFake(t *testing.T, fd *fakeDocker) *composeFaults {
	t.Helper()
	d, err := openComposeFaults(context.Background(), composeCluster(), "", fd.run)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestComposeResolvesServicesAndNames(t *testing.T) {
	d := openFake(t, projectDocker(nil))
	names, wan, err := d.site("idc-a")
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by component: broker-0, etcd, proxy.
	if want := []string{"p_broker-a-0_1", "p_etcd-a_1", "p_proxy-a_1"}; !reflect.DeepEqual(names, want) || wan != "p_wan" {
		t.Fatalf("site idc-a = %v on %q, want %v on p_wan", names, wan, want)
	}
	if n, err := d.container("witness", "etcd"); err != nil || n != "plain-etcd-w" {
		t.Fatalf("witness etcd = %q, %v; want the plain container name", n, err)
	}
	if _, err := d.container("idc-a", "replicator"); err == nil || !strings.Contains(err.Error(), "broker-0, etcd, proxy") {
		t.Fatalf("unknown component: err = %v, want the known ones listed", err)
	}
	if _, err := d.KillSite(context.Background(), "nowhere"); err == nil {
		t.Fatal("an unknown site was accepted")
	}
}

func TestComposeResolveFailures(t *testing.T) {
	tests := []struct {
		name    string
		ps      string
		want    string
		inspect error
	}{
		{"missing container", "", `no container "etcd-b"`, errors.New("No such object")},
		{"ambiguous service", "p_etcd-b_1\tetcd-b\np_etcd-b_2\tetcd-b\n", "ambiguous", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := composeCluster()
			f.Compose.Sites = map[string]clusterfile.ComposeSite{"idc-b": f.Compose.Sites["idc-b"]}
			fd := &fakeDocker{answer: func(args []string) (string, error) {
				switch args[0] {
				case "ps":
					return tt.ps, nil
				case "network":
					return "p_wan\twan\n", nil
				}
				return "", tt.inspect
			}}
			_, err := openComposeFaults(context.Background(), f, "", fd.run)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestComposeKillSite(t *testing.T) {
	var killErr error
	fd := projectDocker(func(args []string) (string, error) {
		if args[0] == "kill" {
			return "", killErr
		}
		return "", fmt.Errorf("unexpected docker %v", args)
	})
	d := openFake(t, fd)
	ctx := context.Background()
	n := len(fd.calls)
	detail, err := d.KillSite(ctx, "idc-a")
	if err != nil {
		t.Fatal(err)
	}
	want := "kill --signal KILL p_broker-a-0_1 p_etcd-a_1 p_proxy-a_1"
	if got := fd.since(n); len(got) != 1 || got[0] != want {
		t.Fatalf("docker calls %q, want one %q", got, want)
	}
	if !strings.HasPrefix(detail, "docker kill p_broker-a-0_1") {
		t.Fatalf("detail %q", detail)
	}

	killErr = errors.New("docker kill: exit status 1: Error response from daemon: Cannot kill container: p_etcd-a_1: Container 38e4 is not running")
	if detail, err := d.KillSite(ctx, "idc-a"); err != nil || !strings.Contains(detail, "not running: p_etcd-a_1") {
		t.Fatalf("a container not running: %q, %v; want it reported, not an error", detail, err)
	}
	killErr = errors.New("docker kill: exit status 1: Error response from daemon: Cannot kill container: p_etcd-a_1: Container 38e4 is not running\nError response from daemon: Cannot kill container: p_proxy-a_1: permission denied")
	if _, err := d.KillSite(ctx, "idc-a"); err == nil {
		t.Fatal("another failure was not an error")
	}
	killErr = errors.New("docker kill: exit status 1: Cannot connect to the Docker daemon")
	if _, err := d.KillComponent(ctx, "idc-a", "proxy"); err == nil {
		t.Fatal("an unreachable daemon was not an error")
	}
}

func TestComposeRestartWaitsForHealth(t *testing.T) {
	polls := 0
	fd := projectDocker(func(args []string) (string, error) {
		switch args[0] {
		case "start":
			return "", nil
		case "inspect":
			polls++
			if polls == 1 {
				return "/p_etcd-b_1 running starting\n", nil
			}
			return "/p_etcd-b_1 running healthy\n", nil
		}
		return "", fmt.Errorf("unexpected docker %v", args)
	})
	d := openFake(t, fd)
	detail, err := d.RestartSite(context.Background(), "idc-b")
	if err != nil {
		t.Fatal(err)
	}
	if polls != 2 || !strings.Contains(detail, "healthy after") {
		t.Fatalf("detail %q after %d polls, want healthy after the second", detail, polls)
	}
}

func TestComposeNotReady(t *testing.T) {
	out := "/a running healthy\n/b running starting\n/c exited none\n/d running none\n"
	if got := notReady(out, true); got != "b starting, c exited" {
		t.Fatalf("notReady(healthy) = %q", got)
	}
	if got := notReady(out, false); got != "c exited" {
		t.Fatalf("notReady(running) = %q", got)
	}
}

func TestComposePartitionAndHeal(t *testing.T) {
	attached := map[string]bool{"p_broker-a-0_1": true, "p_etcd-a_1": true, "p_proxy-a_1": false}
	fd := projectDocker(func(args []string) (string, error) {
		c := args[len(args)-1]
		switch {
		case args[0] == "inspect":
			nets := `"p_idc-a":{"IPAMConfig":{"IPv4Address":"10.1.1.5"},"Aliases":["x"]}`
			if attached[c] {
				nets += `,"p_wan":{"IPAMConfig":{"IPv4Address":"10.1.0.5"},"Aliases":["` + c + `-svc","0123456789ab"]}`
			}
			return "0123456789abcdef {" + nets + "}\n", nil
		case args[0] == "network" && args[1] == "disconnect":
			attached[c] = false
			return "", nil
		case args[0] == "network" && args[1] == "connect":
			attached[c] = true
			return "", nil
		}
		return "", fmt.Errorf("unexpected docker %v", args)
	})
	d := openFake(t, fd)
	ctx := context.Background()
	if _, err := d.Partition(ctx, "idc-a", []string{"idc-b"}); err == nil || !strings.Contains(err.Error(), "idc-b,witness") {
		t.Fatalf("a partial partition: err = %v, want a refusal naming every other site", err)
	}
	n := len(fd.calls)
	if _, err := d.Partition(ctx, "idc-a", []string{"witness", "idc-b"}); err != nil {
		t.Fatal(err)
	}
	var cuts []string
	for _, c := range fd.since(n) {
		if strings.HasPrefix(c, "network") {
			cuts = append(cuts, c)
		}
	}
	// The proxy was not on the WAN: nothing to cut.
	if want := []string{"network disconnect p_wan p_broker-a-0_1", "network disconnect p_wan p_etcd-a_1"}; !reflect.DeepEqual(cuts, want) {
		t.Fatalf("partition ran %q, want %q", cuts, want)
	}
	n = len(fd.calls)
	if _, err := d.Heal(ctx, "idc-a"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"network connect --ip 10.1.0.5 --alias p_broker-a-0_1-svc p_wan p_broker-a-0_1",
		"network connect --ip 10.1.0.5 --alias p_etcd-a_1-svc p_wan p_etcd-a_1",
	}
	if got := fd.since(n); !reflect.DeepEqual(got, want) {
		t.Fatalf("heal ran %q, want %q (the short id alias is Docker's own)", got, want)
	}
	n = len(fd.calls)
	if detail, err := d.Heal(ctx, "idc-a"); err != nil || len(fd.since(n)) != 0 {
		t.Fatalf("healing again: %q, %v, calls %q; want a no-op", detail, err, fd.since(n))
	}
}

func TestComposeWANLatencyUnsupported(t *testing.T) {
	d := openFake(t, projectDocker(nil))
	if _, err := d.WANLatency(context.Background(), "idc-a", "idc-b", time.Millisecond); err == nil || !strings.Contains(err.Error(), "not supported on Compose") {
		t.Fatalf("err = %v", err)
	}
}
