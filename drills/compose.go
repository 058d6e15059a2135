package drills

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/duomq/duomq/internal/clusterfile"
)

// Compose labels Docker puts on a project's containers and networks.
const (
	labelProject = "com.docker.compose.project"
	labelService = "com.docker.compose.service"
	labelNetwork = "com.docker.compose.network"
)

// Bounds of the Docker driver's waits.
const (
	dockerCallTimeout = time.Minute     // one docker command
	composeReadyLimit = 2 * time.Minute // a restarted site or container turning healthy
	composeReadyPoll  = 500 * time.Millisecond
)

// dockerFunc runs one docker command and returns its standard output;
// the error carries its standard error.
type dockerFunc func(ctx context.Context, args ...string) (string, error)

// composeFaults drives a Compose topology through the docker CLI: sites
// and components are containers (docker kill, start, pause, unpause), and
// a partition disconnects a site's containers from its WAN network;
// healing connects them again with the address and aliases they had.
type composeFaults struct {
	f      clusterfile.File
	path   string
	docker dockerFunc

	// Resolved when the driver is opened, read-only afterwards.
	names map[string]string // cluster file's container or service name -> container name
	nets  map[string]string // cluster file's network name -> network name

	mu   sync.Mutex
	cuts map[string][]endpoint // site -> endpoints it was disconnected from
}

// endpoint is a container's attachment to a network, as needed to attach
// it again.
type endpoint struct {
	Container string
	Network   string
	IP        string // the fixed address (empty: Docker picks one)
	Aliases   []string
}

// newComposeFaults returns the Docker driver of a Compose topology.
func newComposeFaults(f clusterfile.File, path string) (Faults, error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, fmt.Errorf("the cluster file names a Compose project: drills inject its faults with the docker CLI, which is not installed: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dockerCallTimeout)
	defer cancel()
	d, err := openComposeFaults(ctx, f, path, runDocker)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// openComposeFaults checks the cluster file's Compose section and
// resolves its containers and networks with docker.
func openComposeFaults(ctx context.Context, f clusterfile.File, path string, docker dockerFunc) (*composeFaults, error) {
	c := f.Compose
	if c == nil || len(c.Sites) == 0 {
		return nil, errors.New("the cluster file's compose section names no site")
	}
	d := &composeFaults{f: f, path: path, docker: docker, names: map[string]string{}, nets: map[string]string{}, cuts: map[string][]endpoint{}}
	if err := d.resolve(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// resolve maps every container and network the cluster file names to a
// Docker object: a container (network) of the Compose project by its name
// or its service's (network's) name in the compose file, else any Docker
// container (network) by name. A cluster file can so name services and
// work with both Compose's container naming schemes and any project name.
func (d *composeFaults) resolve(ctx context.Context) error {
	c := d.f.Compose
	services, networks := map[string][]string{}, map[string][]string{}
	if c.Project != "" {
		filter := "label=" + labelProject + "=" + c.Project
		out, err := d.docker(ctx, "ps", "--all", "--filter", filter, "--format", `{{.Names}}	{{.Label "`+labelService+`"}}`)
		if err != nil {
			return err
		}
		addPairs(services, out)
		out, err = d.docker(ctx, "network", "ls", "--filter", filter, "--format", `{{.Name}}	{{.Label "`+labelNetwork+`"}}`)
		if err != nil {
			return err
		}
		addPairs(networks, out)
	}
	for _, site := range slices.Sorted(maps.Keys(c.Sites)) {
		cs := c.Sites[site]
		if len(cs.Containers) == 0 {
			return fmt.Errorf("compose site %s lists no container", site)
		}
		for _, comp := range slices.Sorted(maps.Keys(cs.Containers)) {
			name, err := d.lookup(ctx, "container", cs.Containers[comp], services)
			if err != nil {
				return fmt.Errorf("compose site %s, %s: %w", site, comp, err)
			}
			d.names[cs.Containers[comp]] = name
		}
		if cs.WAN != "" {
			name, err := d.lookup(ctx, "network", cs.WAN, networks)
			if err != nil {
				return fmt.Errorf("compose site %s, wan: %w", site, err)
			}
			d.nets[cs.WAN] = name
		}
	}
	return nil
}

// addPairs adds the "name<TAB>service" lines of out to byService, and
// each name to itself.
func addPairs(byService map[string][]string, out string) {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, svc, _ := strings.Cut(strings.TrimSpace(line), "\t")
		if name == "" {
			continue
		}
		byService[name] = append(byService[name], name)
		if svc != "" && svc != name {
			byService[svc] = append(byService[svc], name)
		}
	}
}

// lookup finds the one container (network) called name, or the one of
// the project's service (network) name.
func (d *composeFaults) lookup(ctx context.Context, kind, name string, project map[string][]string) (string, error) {
	switch found := project[name]; {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return "", fmt.Errorf("%s %q is ambiguous in the project: %s", kind, name, strings.Join(found, ", "))
	}
	// Not of the project (or no project given): a plain Docker name.
	args := []string{"inspect", "--type", kind, "--format", "{{.Name}}", name}
	out, err := d.docker(ctx, args...)
	if err != nil {
		return "", fmt.Errorf("no %s %q (Compose project %q): %w", kind, name, d.f.Compose.Project, err)
	}
	return strings.TrimPrefix(strings.TrimSpace(out), "/"), nil
}

// site returns a site's containers (sorted by component) and its WAN
// network.
func (d *composeFaults) site(site string) ([]string, string, error) {
	cs, ok := d.f.Compose.Sites[site]
	if !ok {
		return nil, "", fmt.Errorf("no site %q in the cluster file's compose section (sites: %s)", site, strings.Join(slices.Sorted(maps.Keys(d.f.Compose.Sites)), ", "))
	}
	var out []string
	for _, comp := range slices.Sorted(maps.Keys(cs.Containers)) {
		out = append(out, d.names[cs.Containers[comp]])
	}
	return out, d.nets[cs.WAN], nil
}

// container returns the container of one component of a site.
func (d *composeFaults) container(site, comp string) (string, error) {
	cs, ok := d.f.Compose.Sites[site]
	if !ok {
		return "", fmt.Errorf("no site %q in the cluster file's compose section (sites: %s)", site, strings.Join(slices.Sorted(maps.Keys(d.f.Compose.Sites)), ", "))
	}
	name, ok := cs.Containers[comp]
	if !ok {
		return "", fmt.Errorf("site %s has no component %q (components: %s)", site, comp, strings.Join(slices.Sorted(maps.Keys(cs.Containers)), ", "))
	}
	return d.names[name], nil
}

// KillSite sends SIGKILL to every container of the site at once.
func (d *composeFaults) KillSite(ctx context.Context, site string) (string, error) {
	names, _, err := d.site(site)
	if err != nil {
		return "", err
	}
	return d.kill(ctx, names)
}

// RestartSite starts the site's containers and waits until they are
// healthy (running, for a site cut off its WAN: its health checks may
// need the WAN).
func (d *composeFaults) RestartSite(ctx context.Context, site string) (string, error) {
	names, _, err := d.site(site)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	cut := len(d.cuts[site]) > 0
	d.mu.Unlock()
	return d.start(ctx, names, !cut)
}

// KillComponent sends SIGKILL to one container of the site.
func (d *composeFaults) KillComponent(ctx context.Context, site, comp string) (string, error) {
	name, err := d.container(site, comp)
	if err != nil {
		return "", err
	}
	return d.kill(ctx, []string{name})
}

// RestartComponent starts one container and waits until it is healthy
// (running, while its site is cut off its WAN).
func (d *composeFaults) RestartComponent(ctx context.Context, site, comp string) (string, error) {
	name, err := d.container(site, comp)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	cut := len(d.cuts[site]) > 0
	d.mu.Unlock()
	return d.start(ctx, []string{name}, !cut)
}

// PauseComponent freezes one container (docker pause: SIGSTOP-like, the
// cgroup freezer).
func (d *composeFaults) PauseComponent(ctx context.Context, site, comp string) (string, error) {
	name, err := d.container(site, comp)
	if err != nil {
		return "", err
	}
	if _, err := d.call(ctx, "pause", name); err != nil {
		return "", err
	}
	return "docker pause " + name, nil
}

// ResumeComponent thaws a paused container; one not paused is left as it
// is.
func (d *composeFaults) ResumeComponent(ctx context.Context, site, comp string) (string, error) {
	name, err := d.container(site, comp)
	if err != nil {
		return "", err
	}
	if _, err := d.call(ctx, "unpause", name); err != nil {
		if strings.Contains(err.Error(), "is not paused") {
			return name + " was not paused", nil
		}
		return "", err
	}
	return "docker unpause " + name, nil
}

// kill sends SIGKILL to names with one docker command, which kills them
// in parallel: they die within milliseconds of each other, as in a power
// loss. A container that was not running is reported, not an error.
func (d *composeFaults) kill(ctx context.Context, names []string) (string, error) {
	detail := "docker kill " + strings.Join(names, " ")
	_, err := d.call(ctx, append([]string{"kill", "--signal", "KILL"}, names...)...)
	if err == nil {
		return detail, nil
	}
	notRunning, other := killFailures(err.Error())
	if other || len(notRunning) == 0 {
		return "", err
	}
	return detail + " (not running: " + strings.Join(notRunning, ", ") + ")", nil
}

// cannotKill is docker's error for a container that was not running.
var cannotKill = regexp.MustCompile(`Cannot kill container: ([^:\s]+): .*is not running`)

// killFailures reads docker kill's errors: the containers that were not
// running, and whether anything else failed.
func killFailures(msg string) (notRunning []string, other bool) {
	for _, line := range strings.Split(msg, "\n") {
		if m := cannotKill.FindStringSubmatch(line); m != nil {
			notRunning = append(notRunning, m[1])
		} else if strings.Contains(line, "Error response from daemon") {
			other = true
		}
	}
	return notRunning, other
}

// start starts names (a no-op for running ones) and waits until each is
// running and, with healthy, passes its health check.
func (d *composeFaults) start(ctx context.Context, names []string, healthy bool) (string, error) {
	began := time.Now()
	if _, err := d.call(ctx, append([]string{"start"}, names...)...); err != nil {
		return "", err
	}
	if err := d.waitReady(ctx, names, healthy); err != nil {
		return "", err
	}
	what := "healthy"
	if !healthy {
		what = "running (cut off its WAN: health not awaited)"
	}
	return fmt.Sprintf("docker start %s: %s after %v", strings.Join(names, " "), what, time.Since(began).Round(100*time.Millisecond)), nil
}

// waitReady polls the containers' state until every one is running and,
// with healthy, healthy (or has no health check), for composeReadyLimit
// at most.
func (d *composeFaults) waitReady(ctx context.Context, names []string, healthy bool) error {
	deadline := time.Now().Add(composeReadyLimit)
	for {
		out, err := d.call(ctx, append([]string{"inspect", "--type", "container", "--format",
			"{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"}, names...)...)
		waiting := ""
		if err != nil {
			waiting = err.Error()
		} else {
			waiting = notReady(out, healthy)
		}
		if waiting == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %v: %s", composeReadyLimit, waiting)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(composeReadyPoll):
		}
	}
}

// notReady reads "name status health" lines and names the containers not
// ready yet ("" when all are).
func notReady(out string, healthy bool) string {
	var waiting []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		name := strings.TrimPrefix(f[0], "/")
		switch {
		case f[1] != "running":
			waiting = append(waiting, name+" "+f[1])
		case healthy && f[2] != "healthy" && f[2] != "none":
			waiting = append(waiting, name+" "+f[2])
		}
	}
	return strings.Join(waiting, ", ")
}

// Partition disconnects every container of the site from its WAN
// network: the site is cut off from all the others, in both directions,
// while its own containers still reach each other. A Compose topology
// has one WAN network, so from must be empty or name every other site.
func (d *composeFaults) Partition(ctx context.Context, site string, from []string) (string, error) {
	names, wan, err := d.site(site)
	if err != nil {
		return "", err
	}
	if wan == "" {
		return "", fmt.Errorf("compose site %s names no wan network", site)
	}
	if err := d.checkFrom(site, from); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var cut []string
	for _, n := range names {
		ep, attached, err := d.endpoint(ctx, n, wan)
		if err != nil {
			return strings.Join(cut, " "), err
		}
		if !attached {
			continue // already cut
		}
		if _, err := d.call(ctx, "network", "disconnect", wan, n); err != nil {
			return "disconnected " + strings.Join(cut, " "), err
		}
		d.cuts[site] = append(d.cuts[site], ep)
		cut = append(cut, n)
	}
	return fmt.Sprintf("docker network disconnect %s %s", wan, strings.Join(cut, " ")), nil
}

// checkFrom accepts an empty list or one naming every other site.
func (d *composeFaults) checkFrom(site string, from []string) error {
	if len(from) == 0 {
		return nil
	}
	var others []string
	for _, s := range slices.Sorted(maps.Keys(d.f.Compose.Sites)) {
		if s != site {
			others = append(others, s)
		}
	}
	got := slices.Clone(from)
	sort.Strings(got)
	got = slices.Compact(got)
	if !slices.Equal(got, others) {
		return fmt.Errorf("a Compose topology cuts a site off its WAN network, from every other site at once: partition %s from %s is not possible (leave from empty or name %s)",
			site, strings.Join(from, ","), strings.Join(others, ","))
	}
	return nil
}

// endpoint reads a container's attachment to network.
func (d *composeFaults) endpoint(ctx context.Context, container, network string) (endpoint, bool, error) {
	out, err := d.call(ctx, "inspect", "--type", "container", "--format", "{{.Id}} {{json .NetworkSettings.Networks}}", container)
	if err != nil {
		return endpoint{}, false, err
	}
	return parseEndpoint(out, container, network)
}

// parseEndpoint reads "ID {networks as JSON}": the container's address
// and aliases on network (without the short container id Docker adds by
// itself), and whether it is attached.
func parseEndpoint(out, container, network string) (endpoint, bool, error) {
	id, js, ok := strings.Cut(strings.TrimSpace(out), " ")
	if !ok {
		return endpoint{}, false, fmt.Errorf("inspect %s: unexpected output %q", container, out)
	}
	var nets map[string]struct {
		IPAMConfig *struct {
			IPv4Address string
		}
		Aliases []string
	}
	if err := json.Unmarshal([]byte(js), &nets); err != nil {
		return endpoint{}, false, fmt.Errorf("inspect %s: networks: %w", container, err)
	}
	n, ok := nets[network]
	if !ok {
		return endpoint{}, false, nil
	}
	ep := endpoint{Container: container, Network: network}
	if n.IPAMConfig != nil {
		ep.IP = n.IPAMConfig.IPv4Address
	}
	for _, a := range n.Aliases {
		if len(id) >= 12 && a == id[:12] {
			continue
		}
		ep.Aliases = append(ep.Aliases, a)
	}
	return ep, true, nil
}

// Heal connects the site's containers to its WAN network again, each with
// the address and aliases it had. Healing a site that is not cut is a
// no-op.
func (d *composeFaults) Heal(ctx context.Context, site string) (string, error) {
	if _, _, err := d.site(site); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	eps := d.cuts[site]
	if len(eps) == 0 {
		return site + " was not cut", nil
	}
	var done []string
	for len(eps) > 0 {
		ep := eps[0]
		if _, err := d.call(ctx, connectArgs(ep)...); err != nil && !strings.Contains(err.Error(), "already exists") {
			d.cuts[site] = eps
			return "reconnected " + strings.Join(done, " "), err
		}
		done = append(done, ep.Container)
		eps = eps[1:]
	}
	delete(d.cuts, site)
	return "docker network connect " + strings.Join(done, " "), nil
}

// connectArgs is the docker command attaching ep again.
func connectArgs(ep endpoint) []string {
	args := []string{"network", "connect"}
	if ep.IP != "" {
		args = append(args, "--ip", ep.IP)
	}
	for _, a := range ep.Aliases {
		args = append(args, "--alias", a)
	}
	return append(args, ep.Network, ep.Container)
}

// WANLatency is not available: Docker networks have no delay of their own.
func (d *composeFaults) WANLatency(context.Context, string, string, time.Duration) (string, error) {
	return "", errors.New("wan-latency is not supported on Compose topologies (use a local topology: topology: {local: {wan: true}})")
}

// Reload reads the cluster file again (a Compose topology's addresses do
// not change when containers restart).
func (d *composeFaults) Reload() (clusterfile.File, error) {
	if d.path == "" {
		return d.f, nil
	}
	return clusterfile.Load(d.path)
}

// call runs one docker command, bounded by dockerCallTimeout.
func (d *composeFaults) call(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, dockerCallTimeout)
	defer cancel()
	return d.docker(ctx, args...)
}

// runDocker runs the docker CLI.
func runDocker(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
