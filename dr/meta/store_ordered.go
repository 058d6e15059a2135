package meta

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/internal/names"
)

// GetOrdered returns the fencing record of an ordered topic and its
// revision.
func (s *Store) GetOrdered(ctx context.Context, topic string) (Ordered, int64, error) {
	if err := checkName(names.Topic, topic); err != nil {
		return Ordered{}, 0, err
	}
	var o Ordered
	rev, err := s.getValue(ctx, "get ordered", s.k.ordered(topic), &o, orderedNotFound(topic))
	return o, rev, err
}

// CASOrdered replaces the fencing record of an ordered topic if it is still
// at expectRev: the controller's switchover and failover step. The epoch
// must increase and the new primary DC must exist. Of two controllers that
// read the same record, exactly one wins; the other gets ErrConflict.
func (s *Store) CASOrdered(ctx context.Context, topic string, expectRev int64, o Ordered) (int64, error) {
	if o.Topic == "" {
		o.Topic = topic
	}
	if o.Topic != topic {
		return 0, invalid("ordered record of topic %q names topic %q", topic, o.Topic)
	}
	if err := o.validate(); err != nil {
		return 0, err
	}
	cur, rev, err := s.GetOrdered(ctx, topic)
	if err != nil {
		return 0, err
	}
	if rev != expectRev {
		return 0, conflict("ordered topic "+topic, rev, expectRev)
	}
	if o.Epoch <= cur.Epoch {
		return 0, invalid("ordered topic %q: epoch %d does not increase the current epoch %d", topic, o.Epoch, cur.Epoch)
	}
	val, err := encode(o)
	if err != nil {
		return 0, err
	}
	okey, dkey := s.k.ordered(topic), s.k.dc(o.Primary)
	resp, err := s.txn(ctx, "cas ordered",
		[]clientv3.Cmp{atRevision(okey, expectRev), exists(dkey)},
		[]clientv3.Op{clientv3.OpPut(okey, val)},
		[]clientv3.Op{clientv3.OpGet(okey), clientv3.OpGet(dkey)})
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	kv, ok := found(resp, 0)
	switch {
	case !ok:
		return 0, orderedNotFound(topic)
	case kv.ModRevision != expectRev:
		return 0, conflict("ordered topic "+topic, kv.ModRevision, expectRev)
	}
	return 0, dcNotFound(o.Primary)
}

// GetTraffic returns the traffic record and its revision; when none was
// written yet it returns the zero Traffic (every active DC equally) at
// revision 0.
func (s *Store) GetTraffic(ctx context.Context) (Traffic, int64, error) {
	var t Traffic
	rev, err := s.getValue(ctx, "get traffic", s.k.traffic(), &t, nil)
	if err != nil {
		return Traffic{}, 0, err
	}
	return t, rev, nil
}

// CASTraffic replaces the traffic record if it is still at expectRev (0:
// none written yet). Every DC and override topic it names must exist,
// which the transaction compares.
func (s *Store) CASTraffic(ctx context.Context, expectRev int64, t Traffic) (int64, error) {
	t.normalize()
	if err := t.validate(); err != nil {
		return 0, err
	}
	if expectRev < 0 {
		return 0, invalid("traffic: expected revision %d: pass the revision GetTraffic returned", expectRev)
	}
	val, err := encode(t)
	if err != nil {
		return 0, err
	}
	key := s.k.traffic()
	cmps := []clientv3.Cmp{revisionCmp(key, expectRev)}
	els := []clientv3.Op{clientv3.OpGet(key)}
	dcs := t.dcs()
	for _, dc := range dcs {
		cmps = append(cmps, exists(s.k.dc(dc)))
		els = append(els, clientv3.OpGet(s.k.dc(dc)))
	}
	var topics []string
	for topic := range t.TopicOverrides {
		topics = append(topics, topic)
		cmps = append(cmps, exists(s.k.topic(topic)))
		els = append(els, clientv3.OpGet(s.k.topic(topic)))
	}
	if len(cmps) > maxTxnOps {
		return 0, invalid("traffic names %d dcs and topics, more than %d", len(cmps)-1, maxTxnOps-1)
	}
	resp, err := s.txn(ctx, "cas traffic", cmps, []clientv3.Op{clientv3.OpPut(key, val)}, els)
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	kv, ok := found(resp, 0)
	switch {
	case expectRev == 0 && ok:
		return 0, conflict("traffic", kv.ModRevision, expectRev)
	case expectRev != 0 && !ok:
		return 0, conflict("traffic", 0, expectRev)
	case expectRev != 0 && kv.ModRevision != expectRev:
		return 0, conflict("traffic", kv.ModRevision, expectRev)
	}
	for i, dc := range dcs {
		if _, ok := found(resp, 1+i); !ok {
			return 0, fmt.Errorf("traffic: %w", dcNotFound(dc))
		}
	}
	for i, topic := range topics {
		if _, ok := found(resp, 1+len(dcs)+i); !ok {
			return 0, fmt.Errorf("traffic override: %w", topicNotFound(topic))
		}
	}
	return 0, errorf(ErrConflict, "traffic changed concurrently")
}
