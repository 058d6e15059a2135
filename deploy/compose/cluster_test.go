package compose

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/duomq/duomq/drills"
	"github.com/duomq/duomq/internal/clusterfile"
	"github.com/duomq/duomq/internal/leakcheck"
)

// TestMain checks for leaked goroutines (the drill's clients).
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Services map[string]struct {
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Profiles    []string          `yaml:"profiles"`
		Networks    map[string]struct {
			IPv4Address string `yaml:"ipv4_address"`
		} `yaml:"networks"`
	} `yaml:"services"`
	Networks map[string]any `yaml:"networks"`
	Volumes  map[string]any `yaml:"volumes"`
}

func loadCompose(t *testing.T, path string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s: no services", path)
	}
	return c
}

// TestClusterFileMatchesCompose checks that cluster.json describes the
// compose file: its containers are services attached to its WAN network,
// and every address it gives is the address of the component it names.
func TestClusterFileMatchesCompose(t *testing.T) {
	c := loadCompose(t, "docker-compose.yml")
	f, err := clusterfile.Load("cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	if f.Compose == nil || len(f.Compose.Sites) != len(f.Sites) {
		t.Fatalf("cluster.json: the compose section should list every site")
	}
	owner := map[string]string{} // IP -> service
	for name, s := range c.Services {
		for _, n := range s.Networks {
			if n.IPv4Address != "" {
				owner[n.IPv4Address] = name
			}
		}
	}
	for site, cs := range f.Compose.Sites {
		if _, ok := c.Networks[cs.WAN]; !ok {
			t.Errorf("site %s: wan network %q is not in the compose file", site, cs.WAN)
		}
		for comp, svc := range cs.Containers {
			s, ok := c.Services[svc]
			if !ok {
				t.Errorf("site %s: %s is service %q, which the compose file lacks", site, comp, svc)
				continue
			}
			if _, ok := s.Networks[cs.WAN]; !ok {
				t.Errorf("site %s: service %s is not on the wan network %s", site, svc, cs.WAN)
			}
		}
		cf := f.Sites[site]
		want := map[string][]string{"etcd": {cf.Etcd}, "controller": {cf.Controller}, "nameserver": {cf.Nameserver}, "proxy": {cf.Proxy}}
		for i, b := range cf.Brokers {
			want["broker-"+strconv.Itoa(i)] = []string{b}
		}
		for comp, addrs := range want {
			for _, a := range addrs {
				if a == "" {
					continue
				}
				if got := owner[host(a)]; got != cs.Containers[comp] {
					t.Errorf("site %s: %s address %s belongs to service %q, want %q", site, comp, a, got, cs.Containers[comp])
				}
			}
		}
		mine := map[string]bool{}
		for _, svc := range cs.Containers {
			mine[svc] = true
		}
		for _, m := range cf.Metrics {
			if !mine[owner[host(m)]] {
				t.Errorf("site %s: metrics URL %s is not one of the site's services", site, m)
			}
		}
	}
	if owner[host(f.ControllerAPI)] == "" {
		t.Errorf("controller_api %s is no service's address", f.ControllerAPI)
	}
}

// TestComposeVolumesAndConfigs checks that etcd members and brokers keep
// their state in named volumes, every named volume is declared, and every
// mounted configuration file exists.
func TestComposeVolumesAndConfigs(t *testing.T) {
	c := loadCompose(t, "docker-compose.yml")
	for name, s := range c.Services {
		stateful := strings.HasPrefix(name, "etcd-") || strings.HasPrefix(name, "broker-")
		hasState := false
		for _, v := range s.Volumes {
			src, rest, _ := strings.Cut(v, ":")
			dst, _, _ := strings.Cut(rest, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.FromSlash(src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
				continue
			}
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s uses volume %s, which is not declared", name, src)
			}
			hasState = hasState || dst == "/var/lib/duomq"
		}
		if stateful && !hasState {
			t.Errorf("service %s keeps its state outside a named volume on /var/lib/duomq", name)
		}
		if len(s.Profiles) == 0 && len(s.Networks) == 0 {
			t.Errorf("service %s is on no network (it would land on a default one)", name)
		}
	}
}

// TestPromtoolCheckConfig checks the Prometheus profile's configuration
// with the rules file it mounts next to it.
func TestPromtoolCheckConfig(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found (scripts/setup.sh installs it)")
		}
		t.Skip("NOT RUN: promtool not found (scripts/setup.sh installs it)")
	}
	dir := t.TempDir()
	for src, dst := range map[string]string{"prometheus.yml": "prometheus.yml", "../prometheus/alerts.yml": "alerts.yml"} {
		b, err := os.ReadFile(filepath.FromSlash(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "check", "config", "prometheus.yml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check config prometheus.yml: %v\n%s", err, out)
	}
}

// TestDrillsParse checks the Compose variants of the shipped drills.
func TestDrillsParse(t *testing.T) {
	files, _ := filepath.Glob("drills/*.yaml")
	if len(files) == 0 {
		t.Fatal("no drill under drills/")
	}
	for _, f := range files {
		if _, err := drills.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// host is the host part of an address or URL.
func host(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	h, _, _ := strings.Cut(addr, ":")
	return h
}
