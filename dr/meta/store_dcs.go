package meta

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// PutDC creates or replaces a DC. An empty State keeps the stored state (or
// is active for a new DC), so re-registering CIDRs never undoes a state
// change the controller made. UpdatedAt is set to now.
func (s *Store) PutDC(ctx context.Context, dc DC) (int64, error) {
	check := dc
	check.normalize()
	if err := check.validate(); err != nil {
		return 0, err
	}
	dc.UpdatedAt = s.now().UTC()
	key := s.k.dc(dc.Name)
	return casRetry(ctx, func() (int64, error) {
		cur, _, err := s.get(ctx, "put dc", key)
		if err != nil {
			return 0, err
		}
		next := dc
		if next.State == "" {
			next.State = DCActive
			if cur != nil {
				var old DC
				if err := decode(key, cur.Value, &old); err != nil {
					return 0, err
				}
				next.State = old.State
			}
		}
		return s.putAt(ctx, "put dc", key, cur, next)
	})
}

// putAt writes v to key if key is still at the revision of cur (absent when
// cur is nil).
func (s *Store) putAt(ctx context.Context, op, key string, cur *mvccpb.KeyValue, v any) (int64, error) {
	val, err := encode(v)
	if err != nil {
		return 0, err
	}
	var rev int64
	if cur != nil {
		rev = cur.ModRevision
	}
	resp, err := s.txn(ctx, op, []clientv3.Cmp{revisionCmp(key, rev)}, []clientv3.Op{clientv3.OpPut(key, val)}, nil)
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, errorf(ErrConflict, "%s: %s changed concurrently", op, key)
	}
	return resp.Header.Revision, nil
}

// GetDC returns a DC and its revision.
func (s *Store) GetDC(ctx context.Context, name string) (DC, int64, error) {
	if err := checkName(names.DC, name); err != nil {
		return DC{}, 0, err
	}
	var dc DC
	rev, err := s.getValue(ctx, "get dc", s.k.dc(name), &dc, dcNotFound(name))
	return dc, rev, err
}

// ListDCs returns every DC in name order and the revision read at.
func (s *Store) ListDCs(ctx context.Context) ([]DC, int64, error) {
	return listValues[DC](ctx, s, "list dcs", s.k.dir(dirDCs))
}

// SetDCState sets a DC's state, recording who changed it and when.
func (s *Store) SetDCState(ctx context.Context, name string, state DCState, by string) (int64, error) {
	if err := checkName(names.DC, name); err != nil {
		return 0, err
	}
	if err := validState(state); err != nil {
		return 0, fmt.Errorf("dc %q: %w", name, err)
	}
	if len(by) > maxUpdatedByLen {
		return 0, invalid("dc %q: updated-by is longer than %d characters", name, maxUpdatedByLen)
	}
	key := s.k.dc(name)
	return casRetry(ctx, func() (int64, error) {
		cur, _, err := s.get(ctx, "set dc state", key)
		if err != nil {
			return 0, err
		}
		if cur == nil {
			return 0, dcNotFound(name)
		}
		var dc DC
		if err := decode(key, cur.Value, &dc); err != nil {
			return 0, err
		}
		dc.State, dc.UpdatedBy, dc.UpdatedAt = state, by, s.now().UTC()
		return s.putAt(ctx, "set dc state", key, cur, dc)
	})
}

// getValue reads and decodes one key into v, returning notFound when it is
// absent.
func (s *Store) getValue(ctx context.Context, op, key string, v any, notFound error) (int64, error) {
	kv, _, err := s.get(ctx, op, key)
	if err != nil {
		return 0, err
	}
	if kv == nil {
		return 0, notFound
	}
	if err := decode(key, kv.Value, v); err != nil {
		return 0, err
	}
	return kv.ModRevision, nil
}

// listValues reads and decodes every value under a prefix, in key order.
func listValues[T any](ctx context.Context, s *Store, op, prefix string) ([]T, int64, error) {
	kvs, rev, err := s.list(ctx, op, prefix)
	if err != nil {
		return nil, 0, err
	}
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := decode(string(kv.Key), kv.Value, &v); err != nil {
			return nil, 0, err
		}
		out = append(out, v)
	}
	return out, rev, nil
}
