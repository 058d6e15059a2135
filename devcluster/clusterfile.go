package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
)

// DCCIDRs are the address ranges recorded for the local DCs (loopback
// ranges, so an SDK's IP look-up can be exercised without leaving the host).
var DCCIDRs = map[string][]string{SiteA: {"127.1.0.0/16"}, SiteB: {"127.2.0.0/16"}}

// bootstrap records the data centers in the metadata (once).
func (s *Supervisor) bootstrap(ctx context.Context) error {
	cli, err := meta.NewClient(s.specs[SiteA].EtcdEndpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	store := meta.New(cli, meta.Options{Logger: s.opts.Logger})
	for _, dc := range []string{SiteA, SiteB} {
		if err := recordDC(ctx, store, dc); err != nil {
			return fmt.Errorf("record DC %s in the metadata: %w", dc, err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := store.WaitRegistered(rctx, map[string]int{SiteA: s.specs[SiteA].brokerCount(), SiteB: s.specs[SiteB].brokerCount()}); err != nil {
		return err
	}
	if err := etcdLeaderTo(ctx, cli, SiteWitness); err != nil {
		// The controllers keep moving it there (preferred-etcd-leader).
		s.opts.Logger.Warn("etcd leadership not moved to the witness at start", "err", err)
	}
	return nil
}

// etcdLeaderTo moves the etcd leadership to member name before the
// topology is reported ready, so that a drill that cuts off a DC right
// away does not also cut off the etcd leader: an election on the quorum's
// side would extend every lease, the cut DC's liveness included, by a
// full TTL. MoveLeader is served by the leader only; the client spreads
// calls over the members, so it is tried a few times.
func etcdLeaderTo(ctx context.Context, cli *clientv3.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		var ml *clientv3.MemberListResponse
		if ml, err = cli.MemberList(ctx); err == nil {
			var want uint64
			for _, m := range ml.Members {
				if m.Name == name && len(m.ClientURLs) > 0 {
					want = m.ID
					var st *clientv3.StatusResponse
					if st, err = cli.Status(ctx, m.ClientURLs[0]); err == nil && st.Leader == want {
						return nil
					}
				}
			}
			if want == 0 {
				return fmt.Errorf("no etcd member %q", name)
			}
			_, err = cli.MoveLeader(ctx, want)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

// recordDC puts a DC record unless there is one. A freshly started etcd
// on a loaded machine may time out its first requests: those are retried
// for a minute (a put that timed out may have been applied, which the
// next attempt's read sees).
func recordDC(ctx context.Context, store *meta.Store, dc string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, _, err := store.GetDC(ctx, dc)
		if errors.Is(err, meta.ErrNotFound) {
			_, err = store.PutDC(ctx, meta.DC{Name: dc, CIDRs: DCCIDRs[dc], State: meta.DCActive, UpdatedBy: "duomq dev"})
		}
		if err == nil || !errors.Is(err, meta.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writeClusterFile writes cluster.json from the sites' ready files.
func (s *Supervisor) writeClusterFile() error {
	f := clusterfile.File{Sites: map[string]clusterfile.Site{}, Dir: s.opts.Dir, DevAPI: s.api}
	for _, name := range Sites {
		spec := s.specs[name]
		r, err := readReady(spec.ReadyFile)
		if err != nil {
			return err
		}
		pids := map[string]int{"site": r.PID}
		for _, c := range spec.Components() {
			cr, err := readReady(ComponentReadyFile(spec, c))
			if err != nil {
				return err
			}
			pids[c] = cr.PID
			if cr.Controller != nil {
				r.Controller = cr.Controller
			}
			if cr.Replicator != nil {
				r.Replicator = cr.Replicator
			}
			r.Brokers = append(r.Brokers, cr.Brokers...)
			r.BrokerNames = append(r.BrokerNames, cr.BrokerNames...)
		}
		cs := clusterfile.Site{PID: r.PID, PIDs: pids, Etcd: r.Etcd, Dir: spec.Dir, Log: spec.Dir + "/site.log", BrokerNames: r.BrokerNames}
		if r.Nameserver != nil {
			cs.Nameserver = r.Nameserver.GRPC
			cs.Metrics = append(cs.Metrics, r.Nameserver.Metrics)
		}
		for _, e := range r.Brokers {
			cs.Brokers = append(cs.Brokers, e.GRPC)
			cs.Metrics = append(cs.Metrics, e.Metrics)
		}
		if r.Proxy != nil {
			cs.Proxy = r.Proxy.GRPC
			cs.Metrics = append(cs.Metrics, r.Proxy.Metrics)
		}
		if r.Replicator != nil {
			cs.Metrics = append(cs.Metrics, r.Replicator.Metrics)
		}
		if r.Controller != nil {
			cs.Controller = r.Controller.HTTP
			cs.Metrics = append(cs.Metrics, r.Controller.Metrics)
		}
		f.Sites[name] = cs
	}
	// The witness is the site a drill is least likely to take down.
	f.ControllerAPI = f.Sites[SiteWitness].Controller
	tok, err := os.ReadFile(filepath.Join(s.opts.Dir, ControllerTokenFile))
	if err != nil {
		return err
	}
	f.ControllerToken = strings.TrimSpace(string(tok))
	s.mu.Lock()
	s.file = f
	s.mu.Unlock()
	return clusterfile.Write(s.ClusterFile(), f)
}

func readReady(path string) (SiteReady, error) { return readJSON[SiteReady](path) }
