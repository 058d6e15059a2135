package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// PutAlive writes a broker's liveness record under lease (granted by the
// caller, who keeps it alive) and, the first time, its registration in
// its DC (type Member), which outlives the lease.
func (s *Store) PutAlive(ctx context.Context, lease clientv3.LeaseID, a Alive) error {
	if err := checkName(names.DC, a.DC); err != nil {
		return err
	}
	if err := checkName(names.Broker, a.Name); err != nil {
		return err
	}
	val, err := encode(a)
	if err != nil {
		return err
	}
	if a.Set != "" {
		if err := checkName(names.Broker, a.Set); err != nil {
			return fmt.Errorf("replica set: %w", err)
		}
	}
	mval, err := encode(Member{Name: a.Name, DC: a.DC, Address: a.Address, Registered: time.Now().UTC(), Set: a.Set})
	if err != nil {
		return err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	akey, mkey := s.k.abs(KeyAlive+a.DC+"/"+a.Name), s.k.abs(KeyMembers+a.DC+"/"+a.Name)
	put := clientv3.OpPut(akey, val, clientv3.WithLease(lease))
	_, err = s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(mkey), "=", 0)).
		Then(put, clientv3.OpPut(mkey, mval)).Else(put).Commit()
	if err != nil {
		return s.fail("put alive", err)
	}
	return nil
}

// ListAlive returns the live brokers by DC, each DC's sorted by name, and
// the revision read.
func (s *Store) ListAlive(ctx context.Context) (map[string][]Alive, int64, error) {
	kvs, rev, err := s.list(ctx, "list alive", s.k.abs(KeyAlive))
	if err != nil {
		return nil, 0, err
	}
	out := map[string][]Alive{}
	for _, kv := range kvs {
		var a Alive
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			s.log.Warn("skipping undecodable liveness record", "key", string(kv.Key), "err", err)
			continue
		}
		out[a.DC] = append(out[a.DC], a)
	}
	for _, as := range out {
		sort.Slice(as, func(i, j int) bool { return as[i].Name < as[j].Name })
	}
	return out, rev, nil
}

// ListPlacement returns every DC's placement (see Place) and the revision
// read.
func (s *Store) ListPlacement(ctx context.Context) (map[string][]Slot, int64, error) {
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.k.abs(KeyMembers), clientv3.WithPrefix()),
		clientv3.OpGet(s.k.abs(KeyAlive), clientv3.WithPrefix()),
		clientv3.OpGet(s.k.abs(KeySets), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, 0, s.fail("list placement", err)
	}
	sets := map[string]map[string]ReplicaSet{}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		var r ReplicaSet
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			continue
		}
		if sets[r.DC] == nil {
			sets[r.DC] = map[string]ReplicaSet{}
		}
		sets[r.DC][r.Name] = r
	}
	members, alive := map[string]map[string]Member{}, map[string]map[string]Alive{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			s.log.Warn("skipping undecodable broker registration", "key", string(kv.Key), "err", err)
			continue
		}
		if members[m.DC] == nil {
			members[m.DC] = map[string]Member{}
		}
		members[m.DC][m.Name] = m
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var a Alive
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			continue
		}
		if alive[a.DC] == nil {
			alive[a.DC] = map[string]Alive{}
		}
		alive[a.DC][a.Name] = a
	}
	out := map[string][]Slot{}
	for dc := range members {
		out[dc] = placement(members[dc], alive[dc], sets[dc])
	}
	for dc := range alive {
		if _, ok := out[dc]; !ok {
			out[dc] = placement(nil, alive[dc], sets[dc])
		}
	}
	return out, resp.Header.Revision, nil
}

// ForgetBroker removes a broker's registration, so that it leaves its DC's
// placement: the queues it held move to the brokers that remain (which do
// not have their data). It fails while the broker is live, and while its
// replica set's record names it the leader: the set would be left with
// no leader that a promotion could replace (a standby in sync takes over
// when the leader's lease is gone; forget the old leader after that).
func (s *Store) ForgetBroker(ctx context.Context, dc, name string) (int64, error) {
	if err := checkName(names.DC, dc); err != nil {
		return 0, err
	}
	if err := checkName(names.Broker, name); err != nil {
		return 0, err
	}
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	mkey, akey := s.k.abs(KeyMembers+dc+"/"+name), s.k.abs(KeyAlive+dc+"/"+name)
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(akey), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(mkey), ">", 0),
	}
	var m Member
	if mrev, err := s.getValue(ctx, "forget broker", mkey, &m, nil); err == nil && mrev > 0 && m.Set != "" {
		var r ReplicaSet
		rrev, err := s.getValue(ctx, "forget broker", s.k.set(dc, m.Set), &r, nil)
		if err != nil {
			return 0, err
		}
		if rrev > 0 && r.Leader == name {
			return 0, errorf(ErrInUse, "broker %s of %s leads replica set %s (term %d, in sync: %v): forgetting it would leave the set without a leader; it is replaced once a standby in sync is promoted (duomq dc sets), then forget it",
				name, dc, m.Set, r.Term, r.InSync)
		}
		cmps = append(cmps, revisionCmp(s.k.set(dc, m.Set), rrev))
	} else if err != nil {
		return 0, err
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(clientv3.OpDelete(mkey)).Else(clientv3.OpGet(akey), clientv3.OpGet(mkey)).Commit()
	if err != nil {
		return 0, s.fail("forget broker", err)
	}
	if !resp.Succeeded {
		if len(resp.Responses[0].GetResponseRange().Kvs) > 0 {
			return 0, errorf(ErrInUse, "broker %s of %s is live: stop it before forgetting it", name, dc)
		}
		if len(resp.Responses[1].GetResponseRange().Kvs) > 0 {
			return 0, errorf(ErrConflict, "broker %s of %s: its replica set's record changed meanwhile: try again", name, dc)
		}
		return 0, errorf(ErrNotFound, "broker %s of %s is not registered", name, dc)
	}
	return resp.Header.Revision, nil
}

// WaitRegistered waits until each DC of want has at least that many
// brokers registered and live, polling etcd, or until ctx ends. Topologies
// call it before they report ready: the placement of queues (Place) is
// over the registered brokers, so a write made before the last broker
// joined would see its queue move.
func (s *Store) WaitRegistered(ctx context.Context, want map[string]int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		all, _, err := s.ListPlacement(ctx)
		missing := ""
		for dc, n := range want {
			live := 0
			for _, sl := range all[dc] {
				if sl.Live {
					live++
				}
				for _, sb := range sl.Standbys {
					if sb.Live {
						live++
					}
				}
			}
			if live < n {
				missing = fmt.Sprintf("%s has %d of %d brokers registered", dc, live, n)
			}
		}
		if err == nil && missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return errorf(ErrUnavailable, "brokers not registered: %s (last error: %v)", missing, err)
		case <-tick.C:
		}
	}
}
