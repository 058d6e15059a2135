package drills

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/duomq/duomq/internal/clusterfile"
)

// devFaults drives a `duomq dev` topology through its dev API: the
// supervisor owns the processes (it kills, stops and restarts them by
// pid), the network namespaces (partitions) and the WAN relays.
type devFaults struct {
	f    clusterfile.File
	path string // cluster.json, read again after restarts
	http *http.Client
}

func newDevFaults(f clusterfile.File, path string) *devFaults {
	return &devFaults{f: f, path: path, http: &http.Client{Timeout: 3 * time.Minute}}
}

func (d *devFaults) KillSite(ctx context.Context, site string) (string, error) {
	return d.post(ctx, "/sites/"+url.PathEscape(site)+"/kill")
}

func (d *devFaults) RestartSite(ctx context.Context, site string) (string, error) {
	return d.post(ctx, "/sites/"+url.PathEscape(site)+"/restart")
}

func (d *devFaults) component(ctx context.Context, site, comp, action string) (string, error) {
	return d.post(ctx, "/sites/"+url.PathEscape(site)+"/components/"+url.PathEscape(comp)+"/"+action)
}

func (d *devFaults) KillComponent(ctx context.Context, site, comp string) (string, error) {
	return d.component(ctx, site, comp, "kill")
}

func (d *devFaults) RestartComponent(ctx context.Context, site, comp string) (string, error) {
	return d.component(ctx, site, comp, "restart")
}

func (d *devFaults) PauseComponent(ctx context.Context, site, comp string) (string, error) {
	return d.component(ctx, site, comp, "pause")
}

func (d *devFaults) ResumeComponent(ctx context.Context, site, comp string) (string, error) {
	return d.component(ctx, site, comp, "resume")
}

func (d *devFaults) Partition(ctx context.Context, site string, from []string) (string, error) {
	return d.post(ctx, "/sites/"+url.PathEscape(site)+"/partition?from="+url.QueryEscape(strings.Join(from, ",")))
}

func (d *devFaults) Heal(ctx context.Context, site string) (string, error) {
	return d.post(ctx, "/sites/"+url.PathEscape(site)+"/heal")
}

func (d *devFaults) WANLatency(ctx context.Context, a, b string, delay time.Duration) (string, error) {
	q := url.Values{"a": {a}, "b": {b}, "delay": {delay.String()}}
	return d.post(ctx, "/wan?"+q.Encode())
}

func (d *devFaults) Reload() (clusterfile.File, error) { return clusterfile.Load(d.path) }

// post calls the dev API and returns its one-line answer.
func (d *devFaults) post(ctx context.Context, path string) (string, error) {
	if d.f.DevAPI == "" {
		return "", errors.New("the cluster has no dev API (only `duomq dev` and Compose topologies take faults)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.f.DevAPI+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("dev API %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
