// Package devcluster is the local topology behind `duomq dev`: two data
// centers and a witness on loopback, each site its own OS processes, so
// that killing them is the loss of a whole DC and killing or stopping one
// is the loss of one component.
//
// The Supervisor allocates ports once (kept in DIR/topology.json so a
// restart finds the same cluster), writes one SiteSpec per site, starts
// `duomq site --spec FILE` for each, waits until every site reports ready,
// records the data centers in the metadata, and writes DIR/cluster.json
// (package clusterfile). It never restarts a site on its own: a lost site
// is reported and stays down until restarted through the control API
// (POST /sites/<site>/restart on cluster.json's dev_api).
//
// A site's core process (RunSite) runs an embedded etcd member and, in a
// DC, a nameserver, the DC's brokers, whose topics follow the metadata,
// and the proxy. Its controller candidate and (in a DC) its replicator run
// in processes of their own (RunComponent), started once the cores are
// ready. With Options.WAN, connections between sites' brokers go through
// the supervisor's relays, which add latency on request (wan.go).
//
// Invariants: each site process owns its own directory under DIR; the etcd
// peer and client ports of a topology never change once allocated (etcd
// members are known by their peer URLs).
package devcluster
