package broker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/duomq/duomq/internal/names"
)

// Topics and the group that the broker owns itself. Their names start with
// "%", which no user name may contain, so they never collide with a user's.
const (
	// ScheduleTopic holds delayed messages, one queue per delay level
	// (DelayLevels), until they are due. It is not listed by Topics.
	ScheduleTopic = "%SCHEDULE%"
	// SchedulerGroup is the consumer group whose offsets of ScheduleTopic
	// record the scheduler's progress.
	SchedulerGroup = "%SCHEDULER%"
)

// Message properties that the broker reads or writes. Users may not set
// properties starting with ReservedPropertyPrefix (the proxy refuses them);
// the broker trusts its callers.
const (
	ReservedPropertyPrefix = "__"
	// PropDeliverAt delays a message: unix nanoseconds, decimal.
	PropDeliverAt = "__DELIVER_AT"
	// PropRealTopic and PropRealQueue name where a scheduled message goes.
	PropRealTopic = "__REAL_TOPIC"
	PropRealQueue = "__REAL_QUEUE"
	// Carried by retry and dead-letter copies of a popped message.
	PropOriginTopic    = "__ORIGIN_TOPIC"
	PropOriginID       = "__ORIGIN_ID"
	PropOriginQueue    = "__ORIGIN_QUEUE"
	PropOriginOffset   = "__ORIGIN_OFFSET"
	PropReconsumeTimes = "__RECONSUME_TIMES"
	// PropReplicatedAt is set on every record a follower stores through
	// ReplicaAppend: when it stored it (unix nanoseconds, decimal). The
	// record keeps the leader's store time, which retention and look-ups
	// by time rely on being the same in every DC.
	PropReplicatedAt = "__REPLICATED_AT"
)

// checkTopicName accepts user and system topic names and the schedule topic.
func checkTopicName(name string) error {
	if name == ScheduleTopic {
		return nil
	}
	if err := names.Topic(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	return nil
}

// isSystemTopic reports whether a topic is one the broker creates itself.
func isSystemTopic(name string) bool { return strings.HasPrefix(name, "%") }

// ensureTopic creates a broker-owned topic with the given queue count if
// it does not exist (or grows it).
func (b *Broker) ensureTopic(name string, queues uint32) error {
	b.mu.RLock()
	t, ok := b.st.Topics[name]
	b.mu.RUnlock()
	if ok && t.Queues >= queues {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok = b.st.Topics[name]
	switch {
	case ok && t.Queues >= queues:
		return nil
	case ok:
		t.Queues = queues
	default:
		t = TopicConfig{Name: name, Queues: queues, Perm: PermReadWrite}
		b.log.Info("creating system topic", "topic", name, "queues", queues)
	}
	if err := b.putTopicLocked(t); err != nil && !errors.Is(err, ErrTopicExists) {
		return err
	}
	return nil
}
