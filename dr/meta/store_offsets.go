package meta

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// PutOffsets writes checkpointed consumer offsets in transactions of at
// most 128 writes. Each transaction requires the groups and topics it names
// to exist. All offsets are validated before anything is written; a failure
// part-way leaves the earlier transactions applied (offsets are
// checkpoints, rewritten every second). A zero UpdatedAt is set to now.
// It returns the revision of the last transaction.
func (s *Store) PutOffsets(ctx context.Context, offsets []OffsetKV) (int64, error) {
	now := s.now().UTC()
	vals := make([]string, len(offsets))
	for i := range offsets {
		o := offsets[i]
		if err := o.validate(); err != nil {
			return 0, err
		}
		if o.UpdatedAt.IsZero() {
			o.UpdatedAt = now
		}
		v, err := encode(o.Offset)
		if err != nil {
			return 0, err
		}
		vals[i] = v
	}
	var rev int64
	for start := 0; start < len(offsets); {
		end, r, err := s.putOffsetBatch(ctx, offsets, vals, start)
		if err != nil {
			if start > 0 {
				return 0, fmt.Errorf("%d of %d offsets written: %w", start, len(offsets), err)
			}
			return 0, err
		}
		start, rev = end, r
	}
	return rev, nil
}

// putOffsetBatch writes offsets[start:end] in one transaction, choosing end
// so that neither the writes nor the existence compares pass etcd's limit.
func (s *Store) putOffsetBatch(ctx context.Context, offsets []OffsetKV, vals []string, start int) (int, int64, error) {
	type ref struct {
		key      string
		notFound func() error
	}
	var (
		ops  []clientv3.Op
		cmps []clientv3.Cmp
		refs []ref // what each compare requires, for the Else reads
		seen = make(map[string]bool)
	)
	end := start
	for ; end < len(offsets) && len(ops) < maxTxnOps; end++ {
		o := offsets[end]
		var add []ref
		if k := s.k.group(o.Group); !seen[k] {
			add = append(add, ref{k, func() error { return groupNotFound(o.Group) }})
		}
		if k := s.k.topic(o.Topic); !seen[k] {
			add = append(add, ref{k, func() error { return topicNotFound(o.Topic) }})
		}
		if len(cmps)+len(add) > maxTxnOps {
			break
		}
		for _, r := range add {
			seen[r.key] = true
			cmps = append(cmps, exists(r.key))
			refs = append(refs, r)
		}
		ops = append(ops, clientv3.OpPut(s.k.offset(o.OffsetKey), vals[end]))
	}
	els := make([]clientv3.Op, len(refs))
	for i, r := range refs {
		els[i] = clientv3.OpGet(r.key, clientv3.WithKeysOnly())
	}
	resp, err := s.txn(ctx, "put offsets", cmps, ops, els)
	if err != nil {
		return 0, 0, err
	}
	if resp.Succeeded {
		return end, resp.Header.Revision, nil
	}
	for i, r := range refs {
		if _, ok := found(resp, i); !ok {
			return 0, 0, r.notFound()
		}
	}
	return 0, 0, errorf(ErrConflict, "put offsets: groups or topics changed concurrently")
}

// ListOffsets returns every offset of a group, in key order, and the
// revision read at.
func (s *Store) ListOffsets(ctx context.Context, group string) ([]OffsetKV, int64, error) {
	if err := checkName(names.Group, group); err != nil {
		return nil, 0, err
	}
	resp, err := s.txn(ctx, "list offsets", nil, []clientv3.Op{
		clientv3.OpGet(s.k.group(group), clientv3.WithKeysOnly()),
		clientv3.OpGet(s.k.groupOffsets(group), clientv3.WithPrefix()),
	}, nil)
	if err != nil {
		return nil, 0, err
	}
	if _, ok := found(resp, 0); !ok {
		return nil, 0, groupNotFound(group)
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	out := make([]OffsetKV, 0, len(kvs))
	for _, kv := range kvs {
		key, ok := s.k.parseOffset(string(kv.Key))
		if !ok {
			return nil, 0, fmt.Errorf("%w: %s: not an offset key", ErrCorrupt, kv.Key)
		}
		var o Offset
		if err := decode(string(kv.Key), kv.Value, &o); err != nil {
			return nil, 0, err
		}
		out = append(out, OffsetKV{OffsetKey: key, Offset: o})
	}
	return out, resp.Header.Revision, nil
}
