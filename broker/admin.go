package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/duomq/duomq/internal/names"
)

// Topic returns the configuration of a topic.
func (b *Broker) Topic(name string) (TopicConfig, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topicLocked(name)
}

func (b *Broker) topicLocked(name string) (TopicConfig, error) {
	if err := checkTopicName(name); err != nil {
		return TopicConfig{}, err
	}
	t, ok := b.st.Topics[name]
	if !ok {
		return t, fmt.Errorf("%w: %q on broker %s", ErrUnknownTopic, name, b.cfg.Name)
	}
	return t, nil
}

// Topics lists the topics, sorted by name. The internal schedule topic
// (ScheduleTopic) is not listed: it is not routable.
func (b *Broker) Topics() []TopicConfig {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ts := b.st.sortedTopics()
	return slices.DeleteFunc(ts, func(t TopicConfig) bool { return t.Name == ScheduleTopic })
}

// CreateTopic creates a topic and its queues. A zero Perm means read-write.
func (b *Broker) CreateTopic(t TopicConfig) (TopicConfig, error) {
	if t.Perm == 0 {
		t.Perm = PermReadWrite
	}
	if err := t.validate(b.cfg.MaxMessageBytes); err != nil {
		return t, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.st.Topics[t.Name]; ok {
		return t, fmt.Errorf("%w: %q", ErrTopicExists, t.Name)
	}
	return t, b.putTopicLocked(t)
}

// UpdateTopic changes a topic's queue count (it may only grow, so that no
// queue with data disappears), permission and message limit.
func (b *Broker) UpdateTopic(t TopicConfig) (TopicConfig, error) {
	if err := t.validate(b.cfg.MaxMessageBytes); err != nil {
		return t, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.st.Topics[t.Name]
	if !ok {
		return t, fmt.Errorf("%w: %q on broker %s", ErrUnknownTopic, t.Name, b.cfg.Name)
	}
	if t.Queues < old.Queues {
		return t, fmt.Errorf("%w: topic %q: queues can only grow (%d -> %d)", ErrInvalidArgument, t.Name, old.Queues, t.Queues)
	}
	t.Epoch = max(t.Epoch, old.Epoch) // an update never lowers the fence
	return t, b.putTopicLocked(t)
}

func (b *Broker) putTopicLocked(t TopicConfig) error {
	if err := b.openQueues(t); err != nil {
		return err
	}
	prev, had := b.st.Topics[t.Name]
	b.st.Topics[t.Name] = t
	if err := b.st.save(b.cfg.DataDir); err != nil {
		if had {
			b.st.Topics[t.Name] = prev
		} else {
			delete(b.st.Topics, t.Name)
		}
		return fmt.Errorf("save topic %q: %w", t.Name, err)
	}
	return nil
}

// DeleteTopic removes a topic, its queues and its consumer offsets. Its
// records stay in the commitlog until retention removes their segments.
//
// Before the topic goes, the dispatcher is caught up and a checkpoint is
// written, so recovery never re-dispatches the deleted topic's records into
// a topic later created with the same name.
func (b *Broker) DeleteTopic(name string) error {
	if err := b.deleteTopic(name); err != nil {
		return err
	}
	b.dropPopState(func(k popKey) bool { return k.topic == name }, nil)
	return nil
}

func (b *Broker) deleteTopic(name string) error {
	if _, err := b.Topic(name); err != nil {
		return err
	}
	if name == ScheduleTopic {
		return fmt.Errorf("%w: %s is the broker's internal schedule topic", ErrInvalidArgument, name)
	}
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	if err := b.clog.Sync(); err != nil {
		return err
	}
	b.catchUp()
	if err := b.writeCheckpoint(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.st.Topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	delete(b.st.Topics, name)
	if err := b.st.save(b.cfg.DataDir); err != nil {
		b.st.Topics[name] = t
		return err
	}
	b.ids.dropTopic(name)
	for id := uint32(0); id < t.Queues; id++ {
		k := queueKey{name, id}
		if q, ok := b.queues[k]; ok {
			q.cq.Close()
			delete(b.queues, k)
		}
	}
	b.offs.DeleteTopic(name)
	return os.RemoveAll(filepath.Join(b.cfg.DataDir, "consumequeue", name))
}

// SetPermission sets the broker's permission (topic "") or a topic's.
func (b *Broker) SetPermission(topic string, p Perm) error {
	if p&^PermReadWrite != 0 {
		return fmt.Errorf("%w: permission %d is not a combination of read (4) and write (2)", ErrInvalidArgument, p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if topic == "" {
		old := b.st.Perm
		b.st.Perm = p
		if err := b.st.save(b.cfg.DataDir); err != nil {
			b.st.Perm = old
			return err
		}
		b.log.Info("broker permission changed", "from", old.String(), "to", p.String())
		return nil
	}
	t, err := b.topicLocked(topic)
	if err != nil {
		return err
	}
	t.Perm = p
	return b.putTopicLocked(t)
}

// Permission is the broker-wide permission.
func (b *Broker) Permission() Perm {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.st.Perm
}

// CommitOffset records a consumer group's offset for a queue.
func (b *Broker) CommitOffset(group, topic string, id uint32, off int64) error {
	if err := names.Group(group); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	if _, err := b.queueOf(topic, id); err != nil {
		return err
	}
	if off < 0 {
		return fmt.Errorf("%w: offset %d is negative", ErrOffsetOutOfRange, off)
	}
	// A commit resets the group's pop position too: its in-flight pops of
	// the queue are forgotten (their receipts become stale).
	k := popKey{group, topic, id}
	b.dropPopState(func(pk popKey) bool { return pk == k }, func() { b.offs.Commit(group, topic, id, off) })
	return nil
}

// QueryOffset returns a group's committed offset of a queue.
func (b *Broker) QueryOffset(group, topic string, id uint32) (int64, bool, error) {
	if err := names.Group(group); err != nil {
		return 0, false, fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	if _, err := b.queueOf(topic, id); err != nil {
		return 0, false, err
	}
	off, ok := b.offs.Get(group, topic, id)
	return off, ok, nil
}

// Info describes the broker for operators.
type Info struct {
	Name, DC, FlushMode string
	Perm                Perm
	MinPos, MaxPos      int64
	MaxMessageBytes     int64
}

// Info returns the broker's description.
func (b *Broker) Info() Info {
	return Info{
		Name: b.cfg.Name, DC: b.cfg.DC, FlushMode: b.cfg.FlushMode, Perm: b.Permission(),
		MinPos: b.clog.MinPos(), MaxPos: b.clog.WrittenPos(), MaxMessageBytes: b.cfg.MaxMessageBytes,
	}
}
