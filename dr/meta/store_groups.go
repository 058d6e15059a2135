package meta

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// CreateGroup creates a consumer group; every subscribed topic must exist,
// which the transaction compares. Defaults are filled in (see Group).
func (s *Store) CreateGroup(ctx context.Context, g Group) (int64, error) {
	return s.writeGroup(ctx, "create group", g, 0)
}

// UpdateGroup replaces a group's configuration if it is still at
// expectRev; every subscribed topic must exist.
func (s *Store) UpdateGroup(ctx context.Context, g Group, expectRev int64) (int64, error) {
	if expectRev <= 0 {
		return 0, invalid("update group %q: expected revision %d: pass the revision GetGroup returned", g.Name, expectRev)
	}
	return s.writeGroup(ctx, "update group", g, expectRev)
}

// writeGroup puts g if its key is at expectRev (0: absent) and all its
// topics exist.
func (s *Store) writeGroup(ctx context.Context, op string, g Group, expectRev int64) (int64, error) {
	g.normalize()
	if err := g.validate(); err != nil {
		return 0, err
	}
	val, err := encode(g)
	if err != nil {
		return 0, err
	}
	key := s.k.group(g.Name)
	cmps := []clientv3.Cmp{revisionCmp(key, expectRev)}
	els := []clientv3.Op{clientv3.OpGet(key)}
	for _, t := range g.Topics() {
		tkey := s.k.topic(t)
		cmps = append(cmps, exists(tkey))
		els = append(els, clientv3.OpGet(tkey))
	}
	resp, err := s.txn(ctx, op, cmps, []clientv3.Op{clientv3.OpPut(key, val)}, els)
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	kv, ok := found(resp, 0)
	switch {
	case expectRev == 0 && ok:
		return 0, errorf(ErrExists, "group %q already exists", g.Name)
	case expectRev != 0 && !ok:
		return 0, groupNotFound(g.Name)
	case expectRev != 0 && kv.ModRevision != expectRev:
		return 0, conflict("group "+g.Name, kv.ModRevision, expectRev)
	}
	for i, t := range g.Topics() {
		if _, ok := found(resp, i+1); !ok {
			return 0, topicNotFound(t)
		}
	}
	return 0, errorf(ErrConflict, "group %q changed concurrently", g.Name)
}

// DeleteGroup deletes a group and all its offsets.
func (s *Store) DeleteGroup(ctx context.Context, name string) (int64, error) {
	if err := checkName(names.Group, name); err != nil {
		return 0, err
	}
	key := s.k.group(name)
	resp, err := s.txn(ctx, "delete group",
		[]clientv3.Cmp{exists(key)},
		[]clientv3.Op{clientv3.OpDelete(key), clientv3.OpDelete(s.k.groupOffsets(name), clientv3.WithPrefix())},
		nil)
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, groupNotFound(name)
	}
	return resp.Header.Revision, nil
}

// GetGroup returns a group and its revision.
func (s *Store) GetGroup(ctx context.Context, name string) (Group, int64, error) {
	if err := checkName(names.Group, name); err != nil {
		return Group{}, 0, err
	}
	var g Group
	rev, err := s.getValue(ctx, "get group", s.k.group(name), &g, groupNotFound(name))
	return g, rev, err
}

// ListGroups returns every group in name order and the revision read at.
func (s *Store) ListGroups(ctx context.Context) ([]Group, int64, error) {
	return listValues[Group](ctx, s, "list groups", s.k.dir(dirGroups))
}
