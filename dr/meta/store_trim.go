package meta

import (
	"context"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Trim keeps the newest keep keys under a log prefix (audit/ or drills/,
// whose keys sort by time) and deletes the older ones in one request. It
// returns how many it deleted. Logs that only grow would otherwise fill
// the metadata service, whose space is bounded (etcd's quota).
func (s *Store) Trim(ctx context.Context, relPrefix string, keep int) (int, error) {
	relPrefix = strings.TrimSuffix(relPrefix, "/") + "/"
	if relPrefix != KeyAudit && relPrefix != KeyDrills {
		return 0, invalid("trim %q: only %s and %s are trimmed", relPrefix, KeyAudit, KeyDrills)
	}
	if keep < 1 {
		return 0, invalid("trim %s: keep %d, want at least 1", relPrefix, keep)
	}
	prefix := s.k.abs(relPrefix)
	ctx, cancel := s.reqCtx(ctx)
	defer cancel()
	cnt, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, s.fail("count "+relPrefix, err)
	}
	excess := cnt.Count - int64(keep)
	if excess <= 0 {
		return 0, nil
	}
	old, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(excess))
	if err != nil {
		return 0, s.fail("list "+relPrefix, err)
	}
	if len(old.Kvs) == 0 {
		return 0, nil
	}
	last := string(old.Kvs[len(old.Kvs)-1].Key)
	del, err := s.cli.Delete(ctx, prefix, clientv3.WithRange(last+"\x00"))
	if err != nil {
		return 0, s.fail("trim "+relPrefix, err)
	}
	return int(del.Deleted), nil
}
