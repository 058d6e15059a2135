package broker

import (
	"fmt"
	"strings"

	"github.com/duomq/duomq/broker/offsets"
	"github.com/duomq/duomq/internal/names"
)

// ConsumerOffsets returns the committed offsets of the groups consuming
// topic here (every topic when empty), internal groups (names starting
// with "%") excluded, and internal topics unless asked for by name (a
// mirror): what the replicator copies to the other DC.
func (b *Broker) ConsumerOffsets(topic string) ([]offsets.Entry, error) {
	if topic != "" {
		if _, err := b.Topic(topic); err != nil {
			return nil, err
		}
	}
	var out []offsets.Entry
	for _, e := range b.offs.Snapshot() {
		internal := strings.HasPrefix(e.Topic, "%") && e.Topic != topic // a mirror only when asked for
		if strings.HasPrefix(e.Group, "%") || internal || (topic != "" && e.Topic != topic) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// SyncConsumerOffsets raises committed offsets copied from another DC. An
// offset never moves backwards, and a queue the group is consuming here
// (it has pop state on this broker) is left alone: its consumers own it.
// An ordered topic this DC does not lead is consumed in its primary only,
// so pop state of it here is stale (left from before the topic moved): it
// is dropped and the offset raised, else the next promotion would hand out
// again what was consumed in the other DC. Unknown topics and queues are
// an error before anything is applied.
func (b *Broker) SyncConsumerOffsets(entries []offsets.Entry) (int, error) {
	for _, e := range entries {
		t, err := b.Topic(e.Topic)
		if err != nil {
			return 0, err
		}
		if e.Queue >= t.Queues || e.Offset < 0 || names.Group(e.Group) != nil {
			return 0, fmt.Errorf("%w: offset %s/%s/%d@%d", ErrInvalidArgument, e.Group, e.Topic, e.Queue, e.Offset)
		}
	}
	applied := 0
	for _, e := range entries {
		k := popKey{e.Group, e.Topic, e.Queue}
		if pq := b.findPopState(k); pq != nil {
			t, err := b.Topic(e.Topic)
			if err != nil || !consumedElsewhere(t, b.cfg.DC) {
				continue
			}
			b.dropPopState(func(p popKey) bool { return p == k }, nil)
		}
		if b.offs.Raise(e.Group, e.Topic, e.Queue, e.Offset) {
			applied++
		}
	}
	return applied, nil
}
