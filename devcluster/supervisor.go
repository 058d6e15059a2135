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
	"slices"
	"strconv"
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

// proc is one supervised process: a site's core (comp "") or one of its
// separate components.
type proc struct {
	site, comp string
	spec       SiteSpec
	cmd        *exec.Cmd
	done       chan struct{}
	err        error
}

// procKey names a process: the site and the component ("" for the core).
type procKey struct{ site, comp string }

func (p *proc) name() string {
	if p.comp == "" {
		return "site " + p.site
	}
	return p.comp + " of " + p.site
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Supervisor starts and watches the site processes.
type Supervisor struct {
	opts  SupervisorOptions
	specs map[string]SiteSpec
	topo  topology
	api   string

	wan *wan // nil unless Options.WAN

	mu    sync.Mutex
	procs map[procKey]*proc
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
	s := &Supervisor{opts: o, specs: topo.specs(dir), topo: topo, procs: map[procKey]*proc{}, ready: make(chan struct{})}
	if o.WAN {
		if o.Netns {
			return nil, errors.New("WAN relays and network namespaces cannot be combined: pick one")
		}
		if s.wan, err = newWAN(topo, s.specs); err != nil {
			return nil, err
		}
	}
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
	if s.wan != nil {
		s.wan.start()
		defer s.wan.close()
	}
	defer s.stopAll()
	var cores, comps []procKey
	for _, name := range Sites {
		cores = append(cores, procKey{name, ""})
		for _, c := range s.specs[name].Components() {
			comps = append(comps, procKey{name, c})
		}
	}
	// Cores first (the etcd members), then what runs on them.
	for _, keys := range [][]procKey{cores, comps} {
		if err := s.startAll(ctx, keys); err != nil {
			return err
		}
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

// startAll starts the processes keys and waits until each is ready.
func (s *Supervisor) startAll(ctx context.Context, keys []procKey) error {
	for _, k := range keys {
		if err := s.start(k); err != nil {
			return err
		}
	}
	return s.waitReady(ctx, keys)
}

// readyFile is where process k reports it serves.
func (s *Supervisor) readyFile(k procKey) string {
	if k.comp == "" {
		return s.specs[k.site].ReadyFile
	}
	return ComponentReadyFile(s.specs[k.site], k.comp)
}

// logFile is process k's output: DIR/<site>/site.log for the core,
// DIR/<site>/<component>.log for a component.
func (s *Supervisor) logFile(k procKey) string {
	if k.comp == "" {
		return filepath.Join(s.specs[k.site].Dir, "site.log")
	}
	return filepath.Join(s.specs[k.site].Dir, k.comp+".log")
}

// start launches one process (its old ready file removed first).
func (s *Supervisor) start(k procKey) error {
	spec := s.specs[k.site]
	os.Remove(s.readyFile(k))
	logf, err := os.OpenFile(s.logFile(k), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	args := []string{s.opts.Binary, "site", "--spec", specPath(spec)}
	if k.comp != "" {
		args = append(args, "--component", k.comp)
	}
	if sub := s.topo.Subnet; sub != "" {
		args = append([]string{"ip", "netns", "exec", nsName(sub, k.site)}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the supervisor dies without stopping its sites, they stop too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p := &proc{site: k.site, comp: k.comp, spec: spec, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name(), err)
	}
	s.mu.Lock()
	s.procs[k] = p
	s.mu.Unlock()
	go s.watch(p, logf)
	s.opts.Logger.Info("process started", "site", k.site, "component", k.comp, "pid", cmd.Process.Pid)
	return nil
}

func (s *Supervisor) watch(p *proc, logf *os.File) {
	p.err = p.cmd.Wait()
	logf.Close()
	close(p.done)
	s.mu.Lock()
	stopping := s.procs[procKey{p.site, p.comp}] != p
	s.mu.Unlock()
	s.opts.Logger.Info("process ended", "site", p.site, "component", p.comp, "pid", p.cmd.Process.Pid, "status", exitText(p.err))
	if !stopping {
		fmt.Fprintf(s.opts.Out, "duomq dev: %s (pid %d) exited: %v; not restarting (POST %s/sites/%s/restart to start it again)\n",
			p.name(), p.cmd.Process.Pid, exitText(p.err), s.api, p.site)
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail is the last n lines of a log file (for an error that names it:
// the file may be gone by the time someone reads the error).
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(len(lines)-n, 0):]
	return "  " + strings.Join(lines, "\n  ")
}

// waitReady waits for the ready files of keys.
func (s *Supervisor) waitReady(ctx context.Context, keys []procKey) error {
	deadline := time.Now().Add(s.opts.ReadyTimeout)
	for _, k := range keys {
		for {
			if _, err := os.Stat(s.readyFile(k)); err == nil {
				break
			}
			s.mu.Lock()
			p := s.procs[k]
			s.mu.Unlock()
			if p != nil && !p.running() {
				return fmt.Errorf("%s exited while starting (%v); see %s; it ends with:\n%s", p.name(), exitText(p.err), s.logFile(k), logTail(s.logFile(k), 5))
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s/%s not ready after %v; see %s", k.site, k.comp, s.opts.ReadyTimeout, s.logFile(k))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// stopAll sends SIGTERM (and SIGCONT, for a stopped one) to every running
// process, then SIGKILL after 15 s.
func (s *Supervisor) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = map[procKey]*proc{}
	s.mu.Unlock()
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// siteProcs are the processes of a site, core first.
func (s *Supervisor) siteProcs(site string) ([]*proc, error) {
	spec, ok := s.specs[site]
	if !ok {
		return nil, fmt.Errorf("%w: no site %q", errNotFound, site)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*proc
	for _, c := range append([]string{""}, spec.Components()...) {
		if p := s.procs[procKey{site, c}]; p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Kill sends SIGKILL to every process of a site at once: the loss of the
// whole site.
func (s *Supervisor) Kill(site string) (string, error) {
	procs, err := s.siteProcs(site)
	if err != nil {
		return "", err
	}
	var pids []string
	for _, p := range procs {
		if p.running() {
			p.cmd.Process.Signal(syscall.SIGKILL)
			pids = append(pids, strconv.Itoa(p.cmd.Process.Pid))
		}
	}
	if len(pids) == 0 {
		return "", fmt.Errorf("%w: site %s is not running", errConflict, site)
	}
	for _, p := range procs {
		<-p.done
	}
	return "SIGKILL pids " + strings.Join(pids, ","), nil
}

// restart starts whatever of a site is not running: its core first, then
// its components, each once the one before is ready.
func (s *Supervisor) restart(ctx context.Context, name string) error {
	procs, err := s.siteProcs(name)
	if err != nil {
		return err
	}
	running := map[string]bool{}
	for _, p := range procs {
		running[p.comp] = p.running()
	}
	var steps [][]procKey
	if !running[""] {
		steps = append(steps, []procKey{{name, ""}})
	}
	var comps []procKey
	for _, c := range s.specs[name].Components() {
		if !running[c] {
			comps = append(comps, procKey{name, c})
		}
	}
	if len(comps) > 0 {
		steps = append(steps, comps)
	}
	if len(steps) == 0 {
		return fmt.Errorf("%w: every process of site %s is running", errConflict, name)
	}
	for _, keys := range steps {
		if err := s.startAll(ctx, keys); err != nil {
			return err
		}
	}
	fmt.Fprintf(s.opts.Out, "duomq dev: site %s restarted\n", name)
	return s.writeClusterFile()
}

// ComponentCore names a site's core process (etcd member, nameserver,
// brokers, proxy) in component operations: pausing it freezes the site.
const ComponentCore = "core"

// component returns a component's process.
func (s *Supervisor) component(site, comp string) (*proc, procKey, error) {
	spec, ok := s.specs[site]
	if !ok {
		return nil, procKey{}, fmt.Errorf("%w: no site %q", errNotFound, site)
	}
	k := procKey{site, comp}
	if comp == ComponentCore {
		k.comp = ""
	} else if !slices.Contains(spec.Components(), comp) {
		return nil, k, fmt.Errorf("%w: site %s has no component %q (it has %s, %s)", errNotFound, site, comp, ComponentCore, strings.Join(spec.Components(), ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[k]
	if p == nil {
		return nil, k, fmt.Errorf("%w: %s of %s never started", errConflict, comp, site)
	}
	return p, k, nil
}

// Signal acts on one component of a site: "kill" (SIGKILL, waits for
// the exit), "pause" (SIGSTOP), "resume" (SIGCONT) or "restart" (start
// it again once it is not running, and wait until it is ready).
func (s *Supervisor) Signal(ctx context.Context, site, comp, action string) (string, error) {
	p, k, err := s.component(site, comp)
	if err != nil {
		return "", err
	}
	pid := p.cmd.Process.Pid
	switch action {
	case "kill", "pause", "resume":
		if !p.running() {
			return "", fmt.Errorf("%w: %s (pid %d) is not running", errConflict, p.name(), pid)
		}
		sig := map[string]syscall.Signal{"kill": syscall.SIGKILL, "pause": syscall.SIGSTOP, "resume": syscall.SIGCONT}[action]
		if err := p.cmd.Process.Signal(sig); err != nil {
			return "", err
		}
		if action == "kill" {
			<-p.done
		}
		name := map[string]string{"kill": "SIGKILL", "pause": "SIGSTOP", "resume": "SIGCONT"}[action]
		return fmt.Sprintf("%s %s (pid %d)", name, p.name(), pid), nil
	case "restart":
		if p.running() {
			return "", fmt.Errorf("%w: %s is running (pid %d)", errConflict, p.name(), pid)
		}
		if err := s.startAll(ctx, []procKey{k}); err != nil {
			return "", err
		}
		if err := s.writeClusterFile(); err != nil {
			return "", err
		}
		s.mu.Lock()
		np := s.procs[k]
		s.mu.Unlock()
		return fmt.Sprintf("started pid %d", np.cmd.Process.Pid), nil
	}
	return "", fmt.Errorf("%w: unknown action %q (kill, pause, resume or restart)", errBadRequest, action)
}

var (
	errNotFound   = errors.New("not found")
	errConflict   = errors.New("conflict")
	errBadRequest = errors.New("bad request")
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
		reply(w, "restarted", s.restart(r.Context(), r.PathValue("site")))
	})
	mux.HandleFunc("POST /sites/{site}/kill", func(w http.ResponseWriter, r *http.Request) {
		detail, err := s.Kill(r.PathValue("site"))
		reply(w, detail, err)
	})
	// Components: POST /sites/{site}/components/{component}/{action},
	// action kill, pause, resume or restart.
	mux.HandleFunc("POST /sites/{site}/components/{component}/{action}", func(w http.ResponseWriter, r *http.Request) {
		detail, err := s.Signal(r.Context(), r.PathValue("site"), r.PathValue("component"), r.PathValue("action"))
		reply(w, detail, err)
	})
	// WAN latency (topologies with relays): POST /wan?a=idc-a&b=idc-b&delay=2ms.
	mux.HandleFunc("POST /wan", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		d, err := time.ParseDuration(q.Get("delay"))
		if err != nil {
			reply(w, "", fmt.Errorf("%w: delay %q: %v", errBadRequest, q.Get("delay"), err))
			return
		}
		err = s.SetWANLatency(r.Context(), q.Get("a"), q.Get("b"), d)
		if err != nil {
			err = fmt.Errorf("%w: %v", errBadRequest, err)
		}
		reply(w, fmt.Sprintf("round trip %s-%s +%v", q.Get("a"), q.Get("b"), d), err)
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

// reply writes the dev API's answer: detail, or err with its status.
func reply(w http.ResponseWriter, detail string, err error) {
	switch {
	case errors.Is(err, errNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, errConflict):
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.Is(err, errBadRequest):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		w.Write([]byte(detail + "\n"))
	}
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
