package compose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/drills"
	"github.com/duomq/duomq/internal/clusterfile"
	"github.com/duomq/duomq/internal/syncbuf"
)

// The shipped topology's address block; the test moves it to a free one.
const shippedPrefix = "10.219."

// Bounds of the end-to-end test's steps.
const (
	buildLimit = 6 * time.Minute // go build (a cold cache) and docker build
	upLimit    = 3 * time.Minute // compose up and every container healthy
	drillLimit = 4 * time.Minute
	downLimit  = 2 * time.Minute
)

// TestUnplannedLossDrill builds the image, starts the Compose topology
// under a project and subnets of its own, runs the unplanned loss of the
// primary DC (drills/scenarios/02-primary-dc-lost.yaml: docker kill of
// idc-a under ordered sync load, restart, failback) and checks that the
// drill passed. Everything it created is removed, also when it fails.
// DUOMQ_COMPOSE_DRILL=FILE runs another scenario instead.
func TestUnplannedLossDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("NOT RUN in -short mode: the Compose end-to-end drill builds an image and runs 16 containers")
	}
	d := needDocker(t)
	root := repoRoot(t)
	scenario := filepath.Join(root, "drills", "scenarios", "02-primary-dc-lost.yaml")
	if other := os.Getenv("DUOMQ_COMPOSE_DRILL"); other != "" {
		scenario = other // another drill against the same topology
	}
	s, err := drills.Load(scenario)
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	dir := t.TempDir()
	prefix := freePrefix(t, d)
	copyTopology(t, filepath.Join(root, "deploy"), dir, prefix)
	topo := filepath.Join(dir, "compose")

	tag := "duomq:test-" + suffix
	t.Cleanup(func() { d.quiet("rmi", "--force", tag) })
	began := time.Now()
	bctx, cancel := context.WithTimeout(context.Background(), buildLimit)
	defer cancel()
	build := exec.CommandContext(bctx, "bash", filepath.Join(root, "deploy", "docker", "build.sh"), tag)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/docker/build.sh: %v\n%s", err, out)
	}
	t.Logf("image %s built in %v", tag, time.Since(began).Round(time.Second))

	p := project{d: d, name: "duomqtest" + suffix, dir: topo, image: tag, token: "token-" + suffix}
	t.Cleanup(func() { p.down(t) })
	began = time.Now()
	p.up(t)
	t.Logf("project %s (subnets %s0.0/22) up and healthy in %v", p.name, prefix, time.Since(began).Round(time.Second))

	cluster := p.clusterFile(t)
	ctx, cancel := context.WithTimeout(context.Background(), drillLimit)
	defer cancel()
	var progress syncbuf.Buffer
	began = time.Now()
	rep, err := drills.Run(ctx, s, drills.Options{ClusterFile: cluster, Out: &progress})
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, progress.String())
	}
	var sum bytes.Buffer
	rep.PrintSummary(&sum)
	t.Logf("drill ran in %v:\n%s", time.Since(began).Round(time.Second), sum.String())
	if !rep.Pass {
		t.Fatalf("the drill failed; progress:\n%s", progress.String())
	}
	for _, st := range rep.Steps {
		if st.Step.Action == "kill-site" && !strings.HasPrefix(st.Detail, "docker kill ") {
			t.Errorf("kill-site was not done through Docker: %q", st.Detail)
		}
	}
}

// docker runs the docker CLI and a Compose command.
type docker struct {
	compose []string // "docker compose" or "docker-compose"
}

// needDocker finds the docker CLI, an engine that answers and Compose; it
// skips the test when one is missing, and fails it when CI is set.
func needDocker(t *testing.T) docker {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and %s: the Compose end-to-end test needs a Docker engine and Compose", why)
		}
		t.Skipf("NOT RUN: %s; the Compose end-to-end test needs a Docker engine and Compose", why)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		missing("there is no docker CLI")
	}
	d := docker{}
	if out, err := d.run(10*time.Second, "info", "--format", "{{.ServerVersion}}"); err != nil {
		missing("no Docker engine answers (docker info: " + strings.TrimSpace(out) + ")")
	}
	if _, err := d.run(10*time.Second, "compose", "version"); err == nil {
		d.compose = []string{"docker", "compose"}
	} else if _, err := exec.LookPath("docker-compose"); err == nil {
		d.compose = []string{"docker-compose"}
	} else {
		missing("neither `docker compose` nor docker-compose is installed")
	}
	return d
}

// run runs docker with args within limit and returns its combined output.
func (d docker) run(limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return string(out), err
}

// quiet runs a clean-up command; a failure is only logged by the caller's
// checks.
func (d docker) quiet(args ...string) string {
	out, _ := d.run(downLimit, args...)
	return out
}

// lines runs docker and splits its output into lines (none on error).
func (d docker) lines(args ...string) []string {
	out, err := d.run(time.Minute, args...)
	if err != nil {
		return nil
	}
	return strings.Fields(out)
}

// freePrefix picks 10.N. such that 10.N.0.0/22 overlaps no Docker network
// and no address or route of the host.
func freePrefix(t *testing.T, d docker) string {
	t.Helper()
	used := hostPrefixes()
	if ids := d.lines("network", "ls", "--quiet"); len(ids) > 0 {
		out, err := d.run(time.Minute, append([]string{"network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"}, ids...)...)
		if err != nil {
			t.Fatalf("docker network inspect: %v\n%s", err, out)
		}
		for _, s := range strings.Fields(out) {
			if p, err := netip.ParsePrefix(s); err == nil {
				used = append(used, p)
			}
		}
	}
	start := rand.IntN(40)
	for i := range 40 {
		n := 200 + (start+i)%40
		cand := netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/22", n))
		free := true
		for _, u := range used {
			free = free && !u.Overlaps(cand)
		}
		if free {
			return fmt.Sprintf("10.%d.", n)
		}
	}
	t.Fatal("no free 10.N.0.0/22 (N from 200 to 239) for the topology's networks")
	return ""
}

// hostPrefixes are the networks of the host's addresses and of its IPv4
// routes other than the default one.
func hostPrefixes() []netip.Prefix {
	var out []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...: hex,
		// in the host's (little-endian) byte order.
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 || fl[0] == "Iface" {
			continue
		}
		var dst, mask uint32
		if _, err := fmt.Sscanf(fl[1]+" "+fl[7], "%x %x", &dst, &mask); err != nil || mask == 0 {
			continue
		}
		addr := netip.AddrFrom4([4]byte{byte(dst), byte(dst >> 8), byte(dst >> 16), byte(dst >> 24)})
		bits := 0
		for m := mask; m != 0; m >>= 1 {
			bits += int(m & 1)
		}
		out = append(out, netip.PrefixFrom(addr, bits).Masked())
	}
	return out
}

// copyTopology copies deploy/compose (and the alert rules it mounts) to
// dst, moving the address block to prefix.
func copyTopology(t *testing.T, deploy, dst, prefix string) {
	t.Helper()
	src := filepath.Join(deploy, "compose")
	err := filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, "compose", rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, bytes.ReplaceAll(b, []byte(shippedPrefix), []byte(prefix)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(deploy, "prometheus", "alerts.yml"))
	if err == nil {
		err = os.MkdirAll(filepath.Join(dst, "prometheus"), 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dst, "prometheus", "alerts.yml"), rules, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// project is one Compose project of the topology.
type project struct {
	d            docker
	name, dir    string
	image, token string
}

// compose runs a Compose command of the project within limit.
func (p *project) compose(limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	full := append(append(append([]string{}, p.d.compose[1:]...), "--project-name", p.name, "--file", filepath.Join(p.dir, "docker-compose.yml")), args...)
	cmd := exec.CommandContext(ctx, p.d.compose[0], full...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "DUOMQ_IMAGE="+p.image, "DUOMQ_CONTROLLER_TOKEN="+p.token, "COMPOSE_PROFILES=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// up starts the project and waits until every service is healthy and the
// one-shot ones have succeeded.
func (p *project) up(t *testing.T) {
	t.Helper()
	if out, err := p.compose(upLimit, "up", "--detach"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	deadline := time.Now().Add(upLimit)
	for {
		waiting, err := p.notReady()
		if err != nil {
			t.Fatal(err)
		}
		if waiting == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the topology is not ready within %v: %s", upLimit, waiting)
		}
		time.Sleep(time.Second) // polling Docker's view; nothing to await
	}
}

// notReady names the containers not ready yet; an error for one that
// failed.
func (p *project) notReady() (string, error) {
	ids := p.d.lines("ps", "--all", "--quiet", "--filter", "label=com.docker.compose.project="+p.name)
	if len(ids) == 0 {
		return "no container yet", nil
	}
	out, err := p.d.run(time.Minute, append([]string{"inspect", "--format",
		`{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{index .Config.Labels "com.docker.compose.service"}}`}, ids...)...)
	if err != nil {
		return "", fmt.Errorf("docker inspect: %v\n%s", err, out)
	}
	var waiting []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			continue
		}
		name, status, code, health, service := strings.TrimPrefix(f[0], "/"), f[1], f[2], f[3], f[4]
		oneShot := strings.HasPrefix(service, "register-")
		switch {
		case oneShot && status == "exited" && code == "0":
		case oneShot:
			waiting = append(waiting, name+" "+status)
		case status == "exited" || status == "dead":
			logs, _ := p.d.run(time.Minute, "logs", "--tail", "30", name)
			return "", fmt.Errorf("%s %s (exit code %s):\n%s", name, status, code, logs)
		case status != "running" || health != "healthy":
			waiting = append(waiting, name+" "+status+"/"+health)
		}
	}
	return strings.Join(waiting, ", "), nil
}

// clusterFile writes the cluster file of the project: the shipped one
// (already moved to the project's addresses) with the project's name and
// the controller token.
func (p *project) clusterFile(t *testing.T) string {
	t.Helper()
	f, err := clusterfile.Load(filepath.Join(p.dir, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.Compose.Project, f.Compose.File = p.name, filepath.Join(p.dir, "docker-compose.yml")
	f.ControllerToken, f.Dir = p.token, p.dir
	path := filepath.Join(p.dir, "cluster-"+p.name+".json")
	if err := clusterfile.Write(path, f); err != nil {
		t.Fatal(err)
	}
	return path
}

// down removes the project's containers, networks and volumes (and shows
// the last logs of a failed test), then removes whatever Compose left.
func (p *project) down(t *testing.T) {
	if t.Failed() {
		if out, err := p.compose(time.Minute, "logs", "--no-color", "--tail", "25"); err == nil {
			t.Logf("last logs of %s:\n%s", p.name, out)
		}
	}
	if out, err := p.compose(downLimit, "down", "--volumes", "--remove-orphans", "--timeout", "5"); err != nil {
		t.Errorf("compose down: %v\n%s", err, out)
	}
	label := "label=com.docker.compose.project=" + p.name
	var left []string
	if ids := p.d.lines("ps", "--all", "--quiet", "--filter", label); len(ids) > 0 {
		left = append(left, "containers "+strings.Join(ids, " "))
		p.d.quiet(append([]string{"rm", "--force", "--volumes"}, ids...)...)
	}
	if ids := p.d.lines("network", "ls", "--quiet", "--filter", label); len(ids) > 0 {
		left = append(left, "networks "+strings.Join(ids, " "))
		p.d.quiet(append([]string{"network", "rm"}, ids...)...)
	}
	if ids := p.d.lines("volume", "ls", "--quiet", "--filter", label); len(ids) > 0 {
		left = append(left, "volumes "+strings.Join(ids, " "))
		p.d.quiet(append([]string{"volume", "rm", "--force"}, ids...)...)
	}
	if len(left) > 0 {
		t.Errorf("compose down left %s (removed now)", strings.Join(left, "; "))
	}
}

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal(errors.New("go.mod not found above deploy/compose"))
		}
		dir = parent
	}
}
