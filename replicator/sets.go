package replicator

import (
	"context"
	"errors"
	"fmt"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
)

// Copies inside this DC's replica sets (meta.ReplicaSet). Each live
// standby of a set that has a leader record gets, from the set's leader,
// every queue the set holds of the topics that are replicated: the
// replicated topics' queues placed on the set (ordered ones whichever DC
// leads them, so that a promoted standby holds the follower copy too),
// the mirrors of the other DCs' queues placed on it, and the retry and
// dead-letter topics of the mirrored groups. These are the topics
// metasync stamps with the set's term on the leader, whose every queue
// end a standby must hold to be in sync (broker.StandbyProgress). Copies
// keep topic, queue and offsets; the standby fetches as
// names.StandbyID(dc, standby), which the leader counts as its
// acknowledgement.

// followSets adds the copies of this DC's replica sets to want (leading
// DC: this one).
func (r *Replicator) followSets(want map[queueRef]string) {
	slots := r.src.Placement(r.cfg.DC)
	for i, s := range slots {
		if s.Term == 0 || !s.Live {
			continue
		}
		queues := r.setQueues(i, len(slots))
		for _, sb := range s.Standbys {
			if !sb.Live {
				continue
			}
			for _, q := range queues {
				want[queueRef{topic: q.topic, dst: q.topic, queue: q.queue, standby: sb.Name, slot: i}] = r.cfg.DC
			}
		}
	}
}

type setQueue struct {
	topic string
	queue uint32
}

// setQueues lists the queues held by the replica set at slot i of n.
func (r *Replicator) setQueues(i, n int) []setQueue {
	var out []setQueue
	placed := func(topic string, queues int) {
		for q := i; q < queues; q += n {
			out = append(out, setQueue{topic, uint32(q)})
		}
	}
	topics := map[string]meta.Topic{}
	for _, t := range r.src.Topics() {
		topics[t.Name] = t
		if t.Replication == meta.ReplicationNone {
			continue
		}
		placed(t.Name, t.Queues)
		if t.Ordered {
			continue
		}
		for _, d := range r.src.DCs() {
			if d.Name != r.cfg.DC {
				placed(names.MirrorTopic(d.Name, t.Name), t.Queues)
			}
		}
	}
	lookup := func(n string) (meta.Topic, bool) { t, ok := topics[n]; return t, ok }
	for _, g := range r.src.Groups() {
		if !meta.GroupQueuesMirrored(g, lookup) {
			continue
		}
		for _, topic := range []string{names.RetryTopic(g.Name), names.DLQTopic(g.Name)} {
			out = append(out, setQueue{topic, 0})
			for _, d := range r.src.DCs() {
				if d.Name != r.cfg.DC {
					placed(names.MirrorTopic(d.Name, topic), len(r.src.Placement(d.Name)))
				}
			}
		}
	}
	return out
}

// standbyFor is the liveness record of a copy's standby, while it is
// still a live standby of the set at the ref's slot.
func (r *Replicator) standbyFor(ref queueRef) (meta.Alive, error) {
	slots := r.src.Placement(r.cfg.DC)
	if ref.slot >= len(slots) {
		return meta.Alive{}, fmt.Errorf("replica set slot %d: %s has %d", ref.slot, r.cfg.DC, len(slots))
	}
	for _, sb := range slots[ref.slot].Standbys {
		if sb.Name == ref.standby && sb.Live {
			return sb.Alive, nil
		}
	}
	return meta.Alive{}, fmt.Errorf("broker %s is not a live standby of replica set %s", ref.standby, slots[ref.slot].Set)
}

// syncStandbyOffsets adds to out the committed offsets of every copied
// topic on each set's leader, for each of its live standbys: a promoted
// standby goes on where the leader's consumers were. The leader's reads
// stop at what its in-sync standbys hold, so no offset passes a
// standby's copy.
func (r *Replicator) syncStandbyOffsets(ctx context.Context, out batches) error {
	slots := r.src.Placement(r.cfg.DC)
	var errs []error
	for i, s := range slots {
		if s.Term == 0 || !s.Live || !anyLiveStandby(s) {
			continue
		}
		seen := map[string]bool{}
		for _, q := range r.setQueues(i, len(slots)) {
			if seen[q.topic] {
				continue
			}
			seen[q.topic] = true
			offs, err := r.listOffsets(ctx, s, q.topic)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, sb := range s.Standbys {
				if !sb.Live {
					continue
				}
				for _, o := range offs {
					out[sb.Alive.Address] = append(out[sb.Alive.Address], &brokerpb.ConsumerOffset{Group: o.GetGroup(), Topic: q.topic, QueueId: o.GetQueueId(), Offset: o.GetOffset()})
				}
			}
		}
	}
	return errors.Join(errs...)
}

func anyLiveStandby(s meta.Slot) bool {
	for _, sb := range s.Standbys {
		if sb.Live {
			return true
		}
	}
	return false
}
