// Package clusterfile is the cluster.json contract: where every site's
// processes listen. `duomq dev` writes it; the CLI, drills and SDK examples
// read it. Fields are only ever added, never renamed.
//
//	{"sites": {"idc-a": {"pid": 1234, "etcd": "http://127.0.0.1:P", "nameserver": "127.0.0.1:P",
//	                     "brokers": ["127.0.0.1:P", ...], "proxy": "127.0.0.1:P", "metrics": ["http://.../metrics"]},
//	           "idc-b": {...}, "witness": {"pid": 1236, "etcd": "http://127.0.0.1:P"}},
//	 "controller_api": "http://127.0.0.1:P", "dir": "DIR"}
package clusterfile

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/duomq/duomq/internal/atomicfile"
)

// Site is one site's processes.
type Site struct {
	// PID is the site's core process (etcd member, nameserver, brokers,
	// proxy); PIDs names every process of the site ("site" for the core,
	// "controller", "replicator").
	PID        int            `json:"pid"`
	PIDs       map[string]int `json:"pids,omitempty"`
	Etcd       string         `json:"etcd"`
	Nameserver string         `json:"nameserver,omitempty"`
	Brokers    []string       `json:"brokers,omitempty"`
	// BrokerNames are the brokers' names, in the order of Brokers.
	BrokerNames []string `json:"broker_names,omitempty"`
	Proxy       string   `json:"proxy,omitempty"`
	Metrics     []string `json:"metrics,omitempty"`
	Dir         string   `json:"dir,omitempty"`
	Log         string   `json:"log,omitempty"`
	// Controller is the API URL of the site's controller candidate.
	Controller string `json:"controller,omitempty"`
}

// File is the whole cluster.json.
type File struct {
	Sites         map[string]Site `json:"sites"`
	ControllerAPI string          `json:"controller_api"`
	// ControllerToken is the API token of a local `duomq dev` cluster
	// (production clusters keep theirs out of this file).
	ControllerToken string `json:"controller_token,omitempty"`
	// DevAPI is the `duomq dev` supervisor's control endpoint (restart a
	// site); empty for clusters it did not start.
	DevAPI string `json:"dev_api,omitempty"`
	// Compose describes a topology run by Docker Compose; drills then
	// inject faults through Docker (containers and networks).
	Compose *Compose `json:"compose,omitempty"`
	Dir     string   `json:"dir"`
}

// Compose names a Compose project and, per site, its containers and the
// network that joins the site to the others.
type Compose struct {
	// Project is the Compose project name; File the compose file.
	Project string `json:"project"`
	File    string `json:"file,omitempty"`
	// Sites maps a site to its containers (component name to container
	// name) and its inter-site network.
	Sites map[string]ComposeSite `json:"sites"`
}

// ComposeSite is one site of a Compose topology.
type ComposeSite struct {
	Containers map[string]string `json:"containers"`
	// WAN is the Docker network the site's containers reach other sites
	// through; a partition disconnects them from it.
	WAN string `json:"wan,omitempty"`
}

// Load reads and checks a cluster.json.
func Load(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("cluster file: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("cluster file %s: %w", path, err)
	}
	if len(f.Sites) == 0 {
		return f, fmt.Errorf("cluster file %s: no sites", path)
	}
	return f, nil
}

// Write stores f atomically at path.
func Write(path string, f File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// ControllerURLs lists controller_api first, then every site's candidate:
// any candidate answers (followers redirect writes to the leader).
func (f File) ControllerURLs() []string {
	var out []string
	if f.ControllerAPI != "" {
		out = append(out, f.ControllerAPI)
	}
	for _, name := range f.SiteNames() {
		if u := f.Sites[name].Controller; u != "" && u != f.ControllerAPI {
			out = append(out, u)
		}
	}
	return out
}

// EtcdEndpoints lists every site's etcd client URL, sorted by site.
func (f File) EtcdEndpoints() []string {
	var out []string
	for _, name := range f.SiteNames() {
		if e := f.Sites[name].Etcd; e != "" {
			out = append(out, e)
		}
	}
	return out
}

// SiteNames lists the sites, sorted.
func (f File) SiteNames() []string {
	out := make([]string, 0, len(f.Sites))
	for n := range f.Sites {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Site returns a site by name with an error naming the known ones.
func (f File) Site(name string) (Site, error) {
	s, ok := f.Sites[name]
	if !ok {
		return s, fmt.Errorf("no site %q in the cluster file (sites: %s)", name, strings.Join(f.SiteNames(), ", "))
	}
	return s, nil
}
