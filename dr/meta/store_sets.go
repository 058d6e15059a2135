package meta

import (
	"context"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

func (k keys) set(dc, name string) string { return k.prefix + KeySets + dc + "/" + name }

func (r ReplicaSet) validate() error {
	if err := checkName(names.DC, r.DC); err != nil {
		return err
	}
	if err := checkName(names.Broker, r.Name); err != nil {
		return err
	}
	if err := checkName(names.Broker, r.Leader); err != nil {
		return err
	}
	if r.Term == 0 {
		return invalid("replica set %s/%s: term 0: terms start at 1", r.DC, r.Name)
	}
	for i, b := range r.InSync {
		if b == r.Leader {
			return invalid("replica set %s/%s: the leader %s is listed among its in-sync standbys", r.DC, r.Name, b)
		}
		if slices.Contains(r.InSync[:i], b) {
			return invalid("replica set %s/%s: standby %s is listed twice", r.DC, r.Name, b)
		}
	}
	return nil
}

// CreateReplicaSet writes a replica set's first leader record (term 1,
// no standby in sync yet) naming leader, which must be registered in the
// set and live. It fails with ErrConflict when the set has a record.
func (s *Store) CreateReplicaSet(ctx context.Context, dc, set, leader string) (ReplicaSet, int64, error) {
	r := ReplicaSet{DC: dc, Name: set, Leader: leader, Term: 1, UpdatedAt: time.Now().UTC(), Reason: "created by its first member"}
	if err := r.validate(); err != nil {
		return ReplicaSet{}, 0, err
	}
	val, err := encode(r)
	if err != nil {
		return ReplicaSet{}, 0, err
	}
	key := s.k.set(dc, set)
	resp, err := s.txn(ctx, "create replica set",
		[]clientv3.Cmp{absent(key), exists(s.k.abs(KeyAlive + dc + "/" + leader))},
		[]clientv3.Op{clientv3.OpPut(key, val)}, []clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return ReplicaSet{}, 0, err
	}
	if !resp.Succeeded {
		if _, ok := found(resp, 0); ok {
			return ReplicaSet{}, 0, errorf(ErrConflict, "replica set %s/%s has a leader record already", dc, set)
		}
		return ReplicaSet{}, 0, errorf(ErrNotFound, "replica set %s/%s: broker %s is not live", dc, set, leader)
	}
	return r, resp.Header.Revision, nil
}

// SetReplicaSetInSync replaces the in-sync standbys of a replica set if
// its record is still at expectRev: the leader's write, before it acks
// without a standby and once one has caught up. cur is the record read
// at expectRev.
func (s *Store) SetReplicaSetInSync(ctx context.Context, cur ReplicaSet, expectRev int64, inSync []string, reason string) (int64, error) {
	r := cur.clone()
	r.InSync = slices.Clone(inSync)
	slices.Sort(r.InSync)
	r.UpdatedAt, r.Reason = time.Now().UTC(), reason
	if err := r.validate(); err != nil {
		return 0, err
	}
	val, err := encode(r)
	if err != nil {
		return 0, err
	}
	key := s.k.set(r.DC, r.Name)
	resp, err := s.txn(ctx, "set replica set in-sync standbys",
		[]clientv3.Cmp{atRevision(key, expectRev)}, []clientv3.Op{clientv3.OpPut(key, val)}, []clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		have := int64(0)
		if kv, ok := found(resp, 0); ok {
			have = kv.ModRevision
		}
		return 0, conflict("replica set "+r.DC+"/"+r.Name, have, expectRev)
	}
	return resp.Header.Revision, nil
}

// OrderedBump is an ordered topic's fencing record, read at Rev, whose
// epoch a promotion raises.
type OrderedBump struct {
	Ordered Ordered
	Rev     int64
}

// PromoteReplicaSet makes standby to the leader of a replica set, in
// term cur.Term+1, in one transaction that requires: the record still at
// expectRev, to among its in-sync standbys and live, the old leader's
// liveness record gone (its lease expired, so it takes no ordered
// write), and each fencing record of bumps at its revision; it raises
// each of those epochs by one, recording them in Fenced. The old leader
// leaves the in-sync list (it rejoins once it has caught up as a
// standby).
func (s *Store) PromoteReplicaSet(ctx context.Context, cur ReplicaSet, expectRev int64, to string, bumps []OrderedBump) (ReplicaSet, int64, error) {
	if !slices.Contains(cur.InSync, to) {
		return ReplicaSet{}, 0, errorf(ErrConflict, "replica set %s/%s: standby %s is not in sync (in sync: %v): promoting it could lose acknowledged messages", cur.DC, cur.Name, to, cur.InSync)
	}
	if len(bumps)+4 > maxTxnOps {
		return ReplicaSet{}, 0, invalid("replica set %s/%s: %d ordered topics led by %s are more than one transaction raises (%d)", cur.DC, cur.Name, len(bumps), cur.DC, maxTxnOps-4)
	}
	r := cur.clone()
	r.Leader, r.Term = to, cur.Term+1
	r.InSync = slices.DeleteFunc(r.InSync, func(b string) bool { return b == to })
	r.UpdatedAt = time.Now().UTC()
	r.Reason = "promoted " + to + ": leader " + cur.Leader + " lost its liveness lease"
	if err := r.validate(); err != nil {
		return ReplicaSet{}, 0, err
	}
	key := s.k.set(r.DC, r.Name)
	cmps := []clientv3.Cmp{
		atRevision(key, expectRev),
		absent(s.k.abs(KeyAlive + cur.DC + "/" + cur.Leader)),
		exists(s.k.abs(KeyAlive + cur.DC + "/" + to)),
	}
	var ops []clientv3.Op
	r.Fenced = map[string]FencedEpoch{}
	for _, b := range bumps {
		o := b.Ordered
		o.Epoch++
		r.Fenced[o.Topic] = FencedEpoch{Epoch: o.Epoch, Replaced: b.Rev}
		if err := o.validate(); err != nil {
			return ReplicaSet{}, 0, err
		}
		ov, err := encode(o)
		if err != nil {
			return ReplicaSet{}, 0, err
		}
		cmps = append(cmps, atRevision(s.k.ordered(o.Topic), b.Rev))
		ops = append(ops, clientv3.OpPut(s.k.ordered(o.Topic), ov))
	}
	val, err := encode(r)
	if err != nil {
		return ReplicaSet{}, 0, err
	}
	ops = append(ops, clientv3.OpPut(key, val))
	resp, err := s.txn(ctx, "promote replica set standby", cmps, ops, nil)
	if err != nil {
		return ReplicaSet{}, 0, err
	}
	if !resp.Succeeded {
		return ReplicaSet{}, 0, errorf(ErrConflict, "replica set %s/%s: promotion of %s lost a race (the record, a liveness record or a fencing record changed): re-read and retry", cur.DC, cur.Name, to)
	}
	return r, resp.Header.Revision, nil
}

// GetReplicaSet returns a replica set's leader record and its revision.
func (s *Store) GetReplicaSet(ctx context.Context, dc, set string) (ReplicaSet, int64, error) {
	var r ReplicaSet
	rev, err := s.getValue(ctx, "get replica set", s.k.set(dc, set), &r, errorf(ErrNotFound, "replica set %s/%s has no leader record", dc, set))
	return r, rev, err
}
