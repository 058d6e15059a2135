package meta

import (
	"context"
	"encoding/json"
	"sort"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// PutAlive writes a broker's liveness record under lease (granted by the
// caller, who keeps it alive).
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
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	_, err = s.cli.Put(ctx, s.k.abs(KeyAlive+a.DC+"/"+a.Name), val, clientv3.WithLease(lease))
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
