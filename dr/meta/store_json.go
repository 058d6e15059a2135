package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// PutJSON stores v as JSON at a key under controller/ or drills/ (relative
// to the prefix) if the key is at expectRev: 0 means it must not exist,
// AnyRevision skips the compare. Values should carry their own "version"
// field. It returns the new revision.
func (s *Store) PutJSON(ctx context.Context, rel string, v any, expectRev int64) (int64, error) {
	if err := checkRawKey(rel); err != nil {
		return 0, err
	}
	if expectRev < AnyRevision {
		return 0, invalid("%s: expected revision %d", rel, expectRev)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, invalid("%s: value does not encode as JSON: %v", rel, err)
	}
	key := s.k.abs(rel)
	var cmps []clientv3.Cmp
	if expectRev != AnyRevision {
		cmps = append(cmps, revisionCmp(key, expectRev))
	}
	resp, err := s.txn(ctx, "put "+rel, cmps, []clientv3.Op{clientv3.OpPut(key, string(b))}, []clientv3.Op{clientv3.OpGet(key, clientv3.WithKeysOnly())})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, rawConflict(resp, rel, expectRev)
	}
	return resp.Header.Revision, nil
}

func rawConflict(resp *clientv3.TxnResponse, rel string, expectRev int64) error {
	kv, ok := found(resp, 0)
	switch {
	case expectRev == 0 && ok:
		return errorf(ErrExists, "%s already exists (revision %d)", rel, kv.ModRevision)
	case !ok:
		return rawNotFound(rel)
	}
	return conflict(rel, kv.ModRevision, expectRev)
}

// GetJSON decodes the JSON at a key under controller/ or drills/ into v and
// returns its revision.
func (s *Store) GetJSON(ctx context.Context, rel string, v any) (int64, error) {
	if err := checkRawKey(rel); err != nil {
		return 0, err
	}
	kv, _, err := s.get(ctx, "get "+rel, s.k.abs(rel))
	if err != nil {
		return 0, err
	}
	if kv == nil {
		return 0, rawNotFound(rel)
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrCorrupt, rel, err)
	}
	return kv.ModRevision, nil
}

// ListJSON returns the raw JSON of every key under a relative prefix such
// as KeyDrills, by relative key, and the revision read at.
func (s *Store) ListJSON(ctx context.Context, relPrefix string) (map[string]json.RawMessage, int64, error) {
	relPrefix = strings.TrimSuffix(relPrefix, "/") + "/"
	if err := checkRawKey(relPrefix + "x"); err != nil {
		return nil, 0, err
	}
	kvs, rev, err := s.list(ctx, "list "+relPrefix, s.k.abs(relPrefix))
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string]json.RawMessage, len(kvs))
	for _, kv := range kvs {
		out[strings.TrimPrefix(string(kv.Key), s.k.prefix)] = json.RawMessage(kv.Value)
	}
	return out, rev, nil
}

// DeleteJSON deletes a key under controller/ or drills/ if it is at
// expectRev (AnyRevision: unconditionally).
func (s *Store) DeleteJSON(ctx context.Context, rel string, expectRev int64) (int64, error) {
	if err := checkRawKey(rel); err != nil {
		return 0, err
	}
	if expectRev != AnyRevision && expectRev <= 0 {
		return 0, invalid("delete %s: expected revision %d: pass the revision GetJSON returned or AnyRevision", rel, expectRev)
	}
	key := s.k.abs(rel)
	cmps := []clientv3.Cmp{exists(key)}
	if expectRev != AnyRevision {
		cmps = append(cmps, atRevision(key, expectRev))
	}
	resp, err := s.txn(ctx, "delete "+rel, cmps, []clientv3.Op{clientv3.OpDelete(key)}, []clientv3.Op{clientv3.OpGet(key, clientv3.WithKeysOnly())})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, rawConflict(resp, rel, expectRev)
	}
	return resp.Header.Revision, nil
}
