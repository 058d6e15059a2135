package devcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/dr/meta/member"
	"github.com/duomq/duomq/internal/atomicfile"
	"github.com/duomq/duomq/internal/daemon"
	"github.com/duomq/duomq/internal/freeport"
	"github.com/duomq/duomq/nameserver"
)

// Site names of the local topology.
const (
	SiteA       = "idc-a"
	SiteB       = "idc-b"
	SiteWitness = "witness"
)

// Sites in start order.
var Sites = []string{SiteA, SiteB, SiteWitness}

// SiteSpec is everything one site process runs.
type SiteSpec struct {
	Site          string                    `json:"site"`
	Dir           string                    `json:"dir"`
	Etcd          member.Config             `json:"etcd"`
	EtcdEndpoints []string                  `json:"etcd_endpoints"`
	Nameserver    *daemon.NameserverProcess `json:"nameserver,omitempty"`
	Brokers       []daemon.BrokerProcess    `json:"brokers,omitempty"`
	// BrokerProcesses run each in a process of its own, a component named
	// after the broker (Options.Standbys).
	BrokerProcesses []daemon.BrokerProcess    `json:"broker_processes,omitempty"`
	Proxy           *daemon.ProxyProcess      `json:"proxy,omitempty"`
	Replicator      *daemon.ReplicatorProcess `json:"replicator,omitempty"`
	Controller      *daemon.ControllerProcess `json:"controller,omitempty"`
	ReadyFile       string                    `json:"ready_file"`
	// WANRoutes sends connections to other sites' brokers through the
	// supervisor's WAN relays (Options.WAN); see package wanroute.
	WANRoutes map[string]string `json:"wan_routes,omitempty"`
}

// SiteReady is what a site reports once every component serves.
type SiteReady struct {
	PID         int                `json:"pid"`
	Etcd        string             `json:"etcd"`
	Nameserver  *daemon.Endpoints  `json:"nameserver,omitempty"`
	Brokers     []daemon.Endpoints `json:"brokers,omitempty"`
	BrokerNames []string           `json:"broker_names,omitempty"`
	Proxy       *daemon.Endpoints  `json:"proxy,omitempty"`
	Replicator  *daemon.Endpoints  `json:"replicator,omitempty"`
	Controller  *daemon.Endpoints  `json:"controller,omitempty"`
}

// Options shape the topology.
type Options struct {
	Dir          string
	BrokersPerDC int
	FlushMode    string
	// Netns runs every site in its own network namespace with its own
	// address on a bridge of the host (root and iproute2 needed), so a
	// drill or test can cut links between sites (see Supervisor.Partition).
	Netns bool
	// WAN relays every connection between a site and another site's
	// brokers through the supervisor, so a drill can add latency between
	// sites (Supervisor.SetWANLatency). Not with Netns.
	WAN bool
	// Standbys makes each of a DC's BrokersPerDC placement slots a replica
	// set of two brokers (set-<x>-<i>: broker-<x>-<2i> and the next), and
	// runs every broker in its own process, a component named after it,
	// so a drill can kill one broker (first run of a directory only).
	// Which member leads is not fixed: the processes start together and
	// the first to register creates the set's leader record; a drill
	// names the leader by its set (drills.Step.ReplicaSet).
	Standbys bool
}

// ports are the fixed ports of one site.
type ports struct {
	EtcdClient, EtcdPeer int
	NS, NSMetrics        int
	Brokers              [][2]int // grpc, metrics
	Proxy                [2]int   // grpc, metrics
}

// topology is persisted in DIR/topology.json.
type topology struct {
	Version      int              `json:"version"`
	BrokersPerDC int              `json:"brokers_per_dc"`
	FlushMode    string           `json:"flush_mode"`
	Ports        map[string]ports `json:"ports"`
	// Standbys: two brokers per placement slot, in their own processes
	// (Options.Standbys); Ports lists both of each pair.
	Standbys bool `json:"standbys,omitempty"`
	// Subnet is the /24 (first three octets) of a topology whose sites run
	// in network namespaces; empty: every site on 127.0.0.1.
	Subnet string `json:"subnet,omitempty"`
}

// loadOrAllocate returns the topology of dir, allocating free ports on
// first use.
func loadOrAllocate(o Options) (topology, error) {
	path := filepath.Join(o.Dir, "topology.json")
	var t topology
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &t); err != nil {
			return t, fmt.Errorf("%s: %w (remove the directory to start afresh)", path, err)
		}
		if o.Netns != (t.Subnet != "") {
			return t, fmt.Errorf("%s was made with netns=%v: use the same mode, or remove the directory to start afresh", path, t.Subnet != "")
		}
		return t, t.addProxyPorts(path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return t, err
	}
	t = topology{Version: 1, BrokersPerDC: o.BrokersPerDC, FlushMode: o.FlushMode, Ports: map[string]ports{}, Standbys: o.Standbys}
	brokers := o.BrokersPerDC
	if o.Standbys {
		brokers *= 2
	}
	if o.Netns {
		if t.Subnet, err = freeSubnet(); err != nil {
			return t, err
		}
	}
	for _, s := range Sites {
		p := ports{}
		n := 2
		if s != SiteWitness {
			n += 4 + 2*brokers
		}
		free, err := freeport.Take(n)
		if err != nil {
			return t, err
		}
		p.EtcdClient, p.EtcdPeer = free[0], free[1]
		if s != SiteWitness {
			p.NS, p.NSMetrics = free[2], free[3]
			for i := 0; i < brokers; i++ {
				p.Brokers = append(p.Brokers, [2]int{free[4+2*i], free[5+2*i]})
			}
			p.Proxy = [2]int{free[n-2], free[n-1]}
		}
		t.Ports[s] = p
	}
	b, _ = json.MarshalIndent(t, "", "  ")
	return t, atomicfile.WriteFile(path, b, 0o644)
}

// addProxyPorts gives the DCs of a topology written before proxies were
// part of it their proxy ports, and saves it.
func (t *topology) addProxyPorts(path string) error {
	changed := false
	for _, s := range []string{SiteA, SiteB} {
		p := t.Ports[s]
		if p.Proxy != [2]int{} {
			continue
		}
		free, err := freeport.Take(2)
		if err != nil {
			return err
		}
		p.Proxy = [2]int{free[0], free[1]}
		t.Ports[s] = p
		changed = true
	}
	if !changed {
		return nil
	}
	b, _ := json.MarshalIndent(t, "", "  ")
	return atomicfile.WriteFile(path, b, 0o644)
}

// host is the address a site's components listen on.
func (t topology) host(site string) string {
	if t.Subnet == "" {
		return "127.0.0.1"
	}
	return siteIP(t.Subnet, site)
}

func (t topology) hostPort(site string, p int) string { return t.host(site) + ":" + strconv.Itoa(p) }
func (t topology) httpURL(site string, p int) string  { return "http://" + t.hostPort(site, p) }

// specs builds every site's spec from the topology.
func (t topology) specs(dir string) map[string]SiteSpec {
	initial := map[string]string{}
	var endpoints []string
	for _, s := range Sites {
		initial[s] = t.httpURL(s, t.Ports[s].EtcdPeer)
		endpoints = append(endpoints, t.httpURL(s, t.Ports[s].EtcdClient))
	}
	out := map[string]SiteSpec{}
	for _, s := range Sites {
		p := t.Ports[s]
		sd := filepath.Join(dir, s)
		ec := member.DefaultConfig()
		ec.Name, ec.DataDir = s, filepath.Join(sd, "etcd")
		ec.ClientURL, ec.PeerURL, ec.InitialCluster = t.httpURL(s, p.EtcdClient), t.httpURL(s, p.EtcdPeer), initial
		ec.ClusterToken = "duomq-dev"
		spec := SiteSpec{Site: s, Dir: sd, Etcd: ec, EtcdEndpoints: localFirst(endpoints, ec.ClientURL), ReadyFile: filepath.Join(sd, "ready.json")}
		spec.Controller = controllerProcess(s, t.host(s), filepath.Join(dir, ControllerTokenFile), spec.EtcdEndpoints)
		if s != SiteWitness {
			spec.Nameserver, spec.Brokers = t.dcComponents(s, sd, p)
			if t.Standbys {
				spec.BrokerProcesses, spec.Brokers = spec.Brokers, nil
			}
			spec.Proxy = t.proxy(s, p, spec.EtcdEndpoints)
			spec.Replicator = replicatorProcess(s, t.host(s))
		}
		out[s] = spec
	}
	return out
}

func (t topology) dcComponents(dc, sd string, p ports) (*daemon.NameserverProcess, []daemon.BrokerProcess) {
	ns := daemon.DefaultNameserverProcess()
	ns.Listen, ns.MetricsListen = t.hostPort(dc, p.NS), t.hostPort(dc, p.NSMetrics)
	ns.Nameserver = nameserver.DefaultConfig()
	ns.Nameserver.DC = dc
	var brokers []daemon.BrokerProcess
	for i, bp := range p.Brokers {
		b := daemon.DefaultBrokerProcess()
		b.Listen, b.MetricsListen = t.hostPort(dc, bp[0]), t.hostPort(dc, bp[1])
		b.Nameservers = []string{ns.Listen}
		b.Broker = broker.DefaultConfig()
		b.Broker.Name = fmt.Sprintf("broker-%s-%d", dc[len(dc)-1:], i)
		b.Broker.DC = dc
		b.Broker.DataDir = filepath.Join(sd, b.Broker.Name)
		b.Broker.FlushMode = t.FlushMode
		b.Broker.SegmentBytes = 64 << 20 // small segments keep a dev directory small
		if t.Standbys {
			b.Broker.ReplicaSet = fmt.Sprintf("set-%s-%d", dc[len(dc)-1:], i/2)
		}
		brokers = append(brokers, b)
	}
	return &ns, brokers
}

// proxy is the DC's proxy: it routes to both DCs' nameservers.
func (t topology) proxy(dc string, p ports, etcd []string) *daemon.ProxyProcess {
	pp := daemon.DefaultProxyProcess()
	pp.Proxy.DC, pp.Proxy.ID = dc, dc+"-proxy-0"
	pp.Proxy.Listen, pp.Proxy.MetricsListen = t.hostPort(dc, p.Proxy[0]), t.hostPort(dc, p.Proxy[1])
	pp.Proxy.Etcd = etcd
	pp.Proxy.Nameservers = map[string][]string{}
	for _, other := range []string{SiteA, SiteB} {
		pp.Proxy.Nameservers[other] = []string{t.hostPort(other, t.Ports[other].NS)}
	}
	return &pp
}

// replicatorProcess is a DC's replicator; its metrics port is picked at
// start and reported in the ready file.
func replicatorProcess(dc, host string) *daemon.ReplicatorProcess {
	rp := daemon.DefaultReplicatorProcess()
	rp.MetricsListen = host + ":0"
	rp.Replicator.DC = dc
	return &rp
}

// ControllerTokenFile holds the dev cluster's controller API token, in
// the cluster directory.
const ControllerTokenFile = "controller.token"

// controllerProcess is a site's controller candidate: API and metrics on
// ports picked at start, reported in the ready file. A DC whose liveness
// records are gone is down after a further 50 ms: the records disappear
// only once the quorum expired their leases, which already took lease-ttl
// of silence. The etcd leadership is kept on the witness, so losing a DC
// costs no etcd election.
func controllerProcess(site, host, tokenFile string, etcd []string) *daemon.ControllerProcess {
	cp := daemon.DefaultControllerProcess()
	cp.Listen, cp.MetricsListen = host+":0", host+":0"
	cp.TokenFile, cp.Etcd = tokenFile, etcd
	cp.Controller.ID = site + "-controller"
	cp.Controller.DownAfter = 50 * time.Millisecond
	cp.Controller.PreferredEtcdLeader = SiteWitness
	return &cp
}

func localFirst(all []string, local string) []string {
	out := []string{local}
	for _, e := range all {
		if e != local {
			out = append(out, e)
		}
	}
	return out
}
