package controller

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdMetrics are the metadata cluster as one controller candidate sees
// it. Every candidate exports them, so each site reports the cluster from
// where it stands: a site cut off from the others sees their members
// down and, without a quorum, no leader.
type etcdMetrics struct {
	up            *prometheus.GaugeVec // member
	dbSize        *prometheus.GaugeVec // member
	hasLeader     prometheus.Gauge
	leaderChanges prometheus.Counter
}

func newEtcdMetrics(reg prometheus.Registerer) *etcdMetrics {
	m := &etcdMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_etcd_member_up",
			Help: "1 while the etcd member of the metadata cluster answered this candidate's last status probe, else 0.",
		}, []string{"member"}),
		dbSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_etcd_member_db_size_bytes",
			Help: "Size of the member's backend database at its last answered probe.",
		}, []string{"member"}),
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "duomq_controller_etcd_has_leader",
			Help: "1 while a member that answered the last probe knows a raft leader, else 0 (no quorum in reach).",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_controller_etcd_leader_changes_total",
			Help: "Changes of the etcd raft leader seen by this candidate's probes.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.up, m.dbSize, m.hasLeader, m.leaderChanges)
	}
	return m
}

// etcdMonitor probes every member of the metadata cluster each interval.
type etcdMonitor struct {
	cli      *clientv3.Client
	clock    Clock
	interval time.Duration
	m        *etcdMetrics

	leader  uint64          // last leader seen; 0 before the first
	members map[string]bool // members with series
}

// run probes until ctx ends.
func (e *etcdMonitor) run(ctx context.Context) {
	e.members = map[string]bool{}
	for {
		e.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-e.clock.After(e.interval):
		}
	}
}

// memberStatus is one member's answer to a probe (ok false: none).
type memberStatus struct {
	ok     bool
	leader uint64
	db     int64
}

// probe asks every member for its status and records what it saw.
func (e *etcdMonitor) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, min(e.interval, memberProbeTimeout))
	defer cancel()
	st, err := probeMembers(pctx, e.cli)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		// No member answered even the list: none is seen up, no leader.
		for name := range e.members {
			e.m.up.WithLabelValues(name).Set(0)
		}
		e.m.hasLeader.Set(0)
		return
	}
	e.record(st)
}

// probeMembers lists the members of the cluster and asks each started
// one (named, with a client URL) for its status at once, within ctx.
func probeMembers(ctx context.Context, cli *clientv3.Client) (map[string]memberStatus, error) {
	ml, err := cli.MemberList(ctx)
	if err != nil {
		return nil, err
	}
	st := map[string]memberStatus{}
	var started []*etcdserverpb.Member
	for _, m := range ml.Members {
		if m.Name == "" || len(m.ClientURLs) == 0 {
			continue // added, not started yet
		}
		st[m.Name] = memberStatus{} // before any probe writes st
		started = append(started, m)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range started {
		wg.Go(func() {
			if s, err := cli.Status(ctx, m.ClientURLs[0]); err == nil {
				mu.Lock()
				st[m.Name] = memberStatus{ok: true, leader: s.Leader, db: s.DbSize}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return st, nil
}

// record sets the gauges from one probe and counts a changed leader.
func (e *etcdMonitor) record(st map[string]memberStatus) {
	votes := map[uint64]int{}
	for name, s := range st {
		e.members[name] = true
		if !s.ok {
			e.m.up.WithLabelValues(name).Set(0)
			continue
		}
		e.m.up.WithLabelValues(name).Set(1)
		e.m.dbSize.WithLabelValues(name).Set(float64(s.db))
		if s.leader != 0 {
			votes[s.leader]++
		}
	}
	leader := mostNamed(votes)
	for name := range e.members {
		if _, ok := st[name]; !ok { // removed from the cluster
			e.m.up.DeleteLabelValues(name)
			e.m.dbSize.DeleteLabelValues(name)
			delete(e.members, name)
		}
	}
	if leader == 0 {
		e.m.hasLeader.Set(0)
		return
	}
	e.m.hasLeader.Set(1)
	if e.leader != 0 && leader != e.leader {
		e.m.leaderChanges.Inc()
	}
	e.leader = leader
}

// mostNamed is the leader most members name (the smallest id of a tie, so
// that members briefly disagreeing during an election are not counted as
// changes back and forth); 0 when none names one.
func mostNamed(votes map[uint64]int) uint64 {
	var best uint64
	for id, n := range votes {
		if best == 0 || n > votes[best] || (n == votes[best] && id < best) {
			best = id
		}
	}
	return best
}
