package devcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/duomq/duomq/internal/atomicfile"
	"github.com/duomq/duomq/internal/clusterfile"
)

// SupervisorOptions configure `duomq dev`.
type SupervisorOptions struct {
	Options
	// Binary is the duomq executable started for each site.
	Binary string
	// Out receives the human-readable progress lines.
	Out io.Writer
	// ReadyTimeout bounds the wait for every site to be ready.
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

// site is one supervised site process.
type site struct {
	name string
	spec SiteSpec
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Supervisor starts and watches the site processes.
type Supervisor struct {
	opts  SupervisorOptions
	specs map[string]SiteSpec
	topo  topology
	api   string

	mu    sync.Mutex
	sites map[string]*site
	file  clusterfile.File

	readyOnce sync.Once
	ready     chan struct{} // closed once cluster.json is written
}

// NewSupervisor prepares dir (topology, specs) without starting anything.
func NewSupervisor(o SupervisorOptions) (*Supervisor, error) {
	if o.BrokersPerDC <= 0 {
		o.BrokersPerDC = 2
	}
	if o.FlushMode == "" {
		o.FlushMode = "sync"
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	o.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	topo, err := loadOrAllocate(o.Options)
	if err != nil {
		return nil, err
	}
	if err := ensureToken(filepath.Join(dir, ControllerTokenFile)); err != nil {
		return nil, err
	}
	s := &Supervisor{opts: o, specs: topo.specs(dir), topo: topo, sites: map[string]*site{}, ready: make(chan struct{})}
	for name, spec := range s.specs {
		if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
			return nil, err
		}
		b, _ := json.MarshalIndent(spec, "", "  ")
		if err := atomicfile.WriteFile(specPath(spec), b, 0o644); err != nil {
			return nil, fmt.Errorf("site %s spec: %w", name, err)
		}
	}
	return s, nil
}

func specPath(s SiteSpec) string { return filepath.Join(s.Dir, "spec.json") }

// Ready is closed once every site answers and cluster.json is written.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// ClusterFile is where cluster.json is written.
func (s *Supervisor) ClusterFile() string { return filepath.Join(s.opts.Dir, "cluster.json") }

// Run starts every site, writes cluster.json once all are ready, reports
// sites that exit, and stops every site when ctx ends.
func (s *Supervisor) Run(ctx context.Context) error {
	os.Remove(s.ClusterFile())
	if sub := s.topo.Subnet; sub != "" {
		netDown(sub) // left over by a supervisor that was killed
		if err := netUp(sub); err != nil {
			return fmt.Errorf("network namespaces: %w", err)
		}
		defer func() {
			if err := netDown(sub); err != nil {
				fmt.Fprintf(s.opts.Out, "duomq dev: removing the network namespaces: %v\n", err)
			}
		}()
	}
	stopAPI, err := s.serveAPI()
	if err != nil {
		return err
	}
	defer stopAPI()
	for _, name := range Sites {
		if err := s.start(name); err != nil {
			s.stopAll()
			return err
		}
	}
	defer s.stopAll()
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	if err := s.writeClusterFile(); err != nil {
		return err
	}
	s.readyOnce.Do(func() { close(s.ready) })
	fmt.Fprintf(s.opts.Out, "duomq dev: all sites ready; cluster file %s\n", s.ClusterFile())
	fmt.Fprintf(s.opts.Out, "  export DUOMQ_CLUSTER=%s\n", s.ClusterFile())
	<-ctx.Done()
	fmt.Fprintln(s.opts.Out, "duomq dev: stopping every site")
	return nil
}

// start launches one site process (its old ready file removed first).
func (s *Supervisor) start(name string) error {
	spec := s.specs[name]
	os.Remove(spec.ReadyFile)
	logf, err := os.OpenFile(filepath.Join(spec.Dir, "site.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.opts.Binary, "site", "--spec", specPath(spec))
	if sub := s.topo.Subnet; sub != "" {
		cmd = exec.Command("ip", "netns", "exec", nsName(sub, name), s.opts.Binary, "site", "--spec", specPath(spec))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the supervisor dies without stopping its sites, they stop too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start site %s: %w", name, err)
	}
	st := &site{name: name, spec: spec, cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.sites[name] = st
	s.mu.Unlock()
	go s.watch(st, logf)
	s.opts.Logger.Info("site started", "site", name, "pid", cmd.Process.Pid)
	return nil
}

func (s *Supervisor) watch(st *site, logf *os.File) {
	st.err = st.cmd.Wait()
	logf.Close()
	close(st.done)
	s.mu.Lock()
	stopping := s.sites[st.name] != st
	s.mu.Unlock()
	s.opts.Logger.Info("site process ended", "site", st.name, "pid", st.cmd.Process.Pid, "status", exitText(st.err))
	if !stopping {
		fmt.Fprintf(s.opts.Out, "duomq dev: site %s (pid %d) exited: %v; not restarting (POST %s/sites/%s/restart to start it again)\n",
			st.name, st.cmd.Process.Pid, exitText(st.err), s.api, st.name)
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// waitReady waits for every site's ready file.
func (s *Supervisor) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(s.opts.ReadyTimeout)
	for _, name := range Sites {
		for {
			if _, err := os.Stat(s.specs[name].ReadyFile); err == nil {
				break
			}
			if err := s.siteExited(name); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("site %s not ready after %v; see %s", name, s.opts.ReadyTimeout, filepath.Join(s.specs[name].Dir, "site.log"))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func (s *Supervisor) siteExited(name string) error {
	s.mu.Lock()
	st := s.sites[name]
	s.mu.Unlock()
	select {
	case <-st.done:
		return fmt.Errorf("site %s exited while starting (%v); see %s", name, exitText(st.err), filepath.Join(st.spec.Dir, "site.log"))
	default:
		return nil
	}
}

// stopAll sends SIGTERM to every running site, then SIGKILL after 15 s.
func (s *Supervisor) stopAll() {
	s.mu.Lock()
	sites := s.sites
	s.sites = map[string]*site{}
	s.mu.Unlock()
	for _, st := range sites {
		st.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, st := range sites {
		select {
		case <-st.done:
		case <-time.After(15 * time.Second):
			st.cmd.Process.Kill()
			<-st.done
		}
	}
}

// restart starts a site that is not running.
func (s *Supervisor) restart(ctx context.Context, name string) error {
	s.mu.Lock()
	st, ok := s.sites[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no site %q", errNotFound, name)
	}
	select {
	case <-st.done:
	default:
		return fmt.Errorf("%w: site %s is running (pid %d)", errConflict, name, st.cmd.Process.Pid)
	}
	if err := s.start(name); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	fmt.Fprintf(s.opts.Out, "duomq dev: site %s restarted\n", name)
	return s.writeClusterFile()
}

var (
	errNotFound = errors.New("not found")
	errConflict = errors.New("conflict")
)

// serveAPI runs the control endpoint on a loopback port.
func (s *Supervisor) serveAPI() (func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.api = "http://" + l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sites", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.file
		s.mu.Unlock()
		json.NewEncoder(w).Encode(f)
	})
	mux.HandleFunc("POST /sites/{site}/restart", func(w http.ResponseWriter, r *http.Request) {
		err := s.restart(r.Context(), r.PathValue("site"))
		switch {
		case errors.Is(err, errNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case errors.Is(err, errConflict):
			http.Error(w, err.Error(), http.StatusConflict)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.Write([]byte("restarted\n"))
		}
	})
	// Partitions (topologies in network namespaces): POST
	// /sites/{site}/partition?from=a,b cuts site off from a and b;
	// /sites/{site}/heal undoes it.
	mux.HandleFunc("POST /sites/{site}/partition", func(w http.ResponseWriter, r *http.Request) {
		from := strings.Split(r.URL.Query().Get("from"), ",")
		if err := s.Partition(r.PathValue("site"), from...); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write([]byte("partitioned\n"))
	})
	mux.HandleFunc("POST /sites/{site}/heal", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Heal(r.PathValue("site")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write([]byte("healed\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return func() { srv.Close() }, nil
}

// ensureToken writes a random controller API token to path unless one is
// there already (a restarted dev cluster keeps its token).
func ensureToken(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600)
}

// Partition cuts site off from the sites in from (both directions) until
// Heal; only for a topology in network namespaces (Options.Netns).
func (s *Supervisor) Partition(site string, from ...string) error {
	if s.topo.Subnet == "" {
		return errors.New("partition needs the sites in network namespaces (duomq dev --netns)")
	}
	if _, ok := siteHost[site]; !ok {
		return fmt.Errorf("partition: unknown site %q", site)
	}
	return partition(s.topo.Subnet, site, from)
}

// Heal removes a site's partition.
func (s *Supervisor) Heal(site string) error {
	if s.topo.Subnet == "" {
		return errors.New("heal needs the sites in network namespaces (duomq dev --netns)")
	}
	if _, ok := siteHost[site]; !ok {
		return fmt.Errorf("heal: unknown site %q", site)
	}
	return heal(s.topo.Subnet, site)
}
