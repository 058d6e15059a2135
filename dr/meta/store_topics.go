package meta

import (
	"context"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// CreateTopic creates a topic in one transaction that requires the topic to
// be absent and, for an ordered topic, its primary DC to exist; an ordered
// topic gets its fencing record ordered/<topic> = {primary, epoch 1} in the
// same transaction. Defaults are filled in (see Topic).
func (s *Store) CreateTopic(ctx context.Context, t Topic) (int64, error) {
	t.normalize()
	if err := t.validate(); err != nil {
		return 0, err
	}
	val, err := encode(t)
	if err != nil {
		return 0, err
	}
	key := s.k.topic(t.Name)
	cmps := []clientv3.Cmp{absent(key)}
	ops := []clientv3.Op{clientv3.OpPut(key, val)}
	els := []clientv3.Op{clientv3.OpGet(key)}
	if t.Ordered {
		ord, err := encode(Ordered{Topic: t.Name, Primary: t.Primary, Epoch: 1})
		if err != nil {
			return 0, err
		}
		okey, dkey := s.k.ordered(t.Name), s.k.dc(t.Primary)
		cmps = append(cmps, exists(dkey), absent(okey))
		ops = append(ops, clientv3.OpPut(okey, ord))
		els = append(els, clientv3.OpGet(dkey), clientv3.OpGet(okey))
	}
	resp, err := s.txn(ctx, "create topic", cmps, ops, els)
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	if _, ok := found(resp, 0); ok {
		return 0, errorf(ErrExists, "topic %q already exists", t.Name)
	}
	if t.Ordered {
		if _, ok := found(resp, 1); !ok {
			return 0, dcNotFound(t.Primary)
		}
		return 0, errorf(ErrConflict, "topic %q: a stale ordered/%s record exists without its topic", t.Name, t.Name)
	}
	return 0, errorf(ErrConflict, "topic %q changed concurrently", t.Name)
}

// UpdateTopic replaces a topic's configuration if it is still at
// expectRev. Ordered and Primary cannot change here (moving an ordered
// topic's primary is the controller's switchover, through CASOrdered), and
// the queue count may only grow.
func (s *Store) UpdateTopic(ctx context.Context, t Topic, expectRev int64) (int64, error) {
	t.normalize()
	if err := t.validate(); err != nil {
		return 0, err
	}
	cur, rev, err := s.GetTopic(ctx, t.Name)
	if err != nil {
		return 0, err
	}
	if rev != expectRev {
		return 0, conflict("topic "+t.Name, rev, expectRev)
	}
	switch {
	case cur.Ordered != t.Ordered:
		return 0, invalid("topic %q: ordered cannot change (%v to %v): create a new topic", t.Name, cur.Ordered, t.Ordered)
	case cur.Primary != t.Primary:
		return 0, invalid("topic %q: primary cannot change here (%q to %q): the primary of an ordered topic moves only by a controller switchover", t.Name, cur.Primary, t.Primary)
	case t.Queues < cur.Queues:
		return 0, invalid("topic %q: queues may only grow (%d to %d)", t.Name, cur.Queues, t.Queues)
	}
	val, err := encode(t)
	if err != nil {
		return 0, err
	}
	key := s.k.topic(t.Name)
	resp, err := s.txn(ctx, "update topic",
		[]clientv3.Cmp{atRevision(key, expectRev)},
		[]clientv3.Op{clientv3.OpPut(key, val)},
		[]clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	kv, ok := found(resp, 0)
	if !ok {
		return 0, topicNotFound(t.Name)
	}
	return 0, conflict("topic "+t.Name, kv.ModRevision, expectRev)
}

// DeleteTopic deletes a topic, its ordered/<topic> record and every group's
// offsets of it. A topic that a group subscribes to is refused with
// ErrInUse; the transaction compares the groups it checked, so a group
// subscribing concurrently cannot be missed.
func (s *Store) DeleteTopic(ctx context.Context, name string) (int64, error) {
	if err := checkName(names.Topic, name); err != nil {
		return 0, err
	}
	return casRetry(ctx, func() (int64, error) { return s.deleteTopicOnce(ctx, name) })
}

func (s *Store) deleteTopicOnce(ctx context.Context, name string) (int64, error) {
	groups, grev, err := listValues[Group](ctx, s, "delete topic", s.k.dir(dirGroups))
	if err != nil {
		return 0, err
	}
	var users []string
	var offsets []clientv3.Op
	for _, g := range groups {
		if slices.Contains(g.Topics(), name) {
			users = append(users, g.Name)
		}
		offsets = append(offsets, clientv3.OpDelete(s.k.groupTopicOffsets(g.Name, name), clientv3.WithPrefix()))
	}
	if len(users) > 0 {
		return 0, errorf(ErrInUse, "topic %q is subscribed by group(s) %s: remove the subscription or delete the group first", name, strings.Join(users, ", "))
	}
	key := s.k.topic(name)
	ops := []clientv3.Op{clientv3.OpDelete(key), clientv3.OpDelete(s.k.ordered(name))}
	n := min(len(offsets), maxTxnOps-len(ops))
	ops = append(ops, offsets[:n]...)
	cmps := []clientv3.Cmp{
		exists(key),
		// No group was created or changed since the list above.
		clientv3.Compare(clientv3.ModRevision(s.k.dir(dirGroups)), "<", grev+1).WithPrefix(),
	}
	resp, err := s.txn(ctx, "delete topic", cmps, ops, []clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		if _, ok := found(resp, 0); !ok {
			return 0, topicNotFound(name)
		}
		return 0, errorf(ErrConflict, "delete topic %q: groups changed concurrently", name)
	}
	rev := resp.Header.Revision
	// Past etcd's operations limit, the other groups' offsets go in further
	// transactions. With the topic gone no new offsets of it can be written
	// (PutOffsets compares that the topic exists).
	for rest := offsets[n:]; len(rest) > 0; rest = rest[min(len(rest), maxTxnOps):] {
		resp, err := s.txn(ctx, "delete topic offsets", nil, rest[:min(len(rest), maxTxnOps)], nil)
		if err != nil {
			return 0, fmt.Errorf("topic %q deleted, but not all of its offsets: %w", name, err)
		}
		rev = resp.Header.Revision
	}
	return rev, nil
}

// GetTopic returns a topic and its revision.
func (s *Store) GetTopic(ctx context.Context, name string) (Topic, int64, error) {
	if err := checkName(names.Topic, name); err != nil {
		return Topic{}, 0, err
	}
	var t Topic
	rev, err := s.getValue(ctx, "get topic", s.k.topic(name), &t, topicNotFound(name))
	return t, rev, err
}

// ListTopics returns every topic in name order and the revision read at.
func (s *Store) ListTopics(ctx context.Context) ([]Topic, int64, error) {
	return listValues[Topic](ctx, s, "list topics", s.k.dir(dirTopics))
}
