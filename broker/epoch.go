package broker

import (
	"fmt"
	"time"
)

// Fencing of ordered topics.
//
// An ordered topic carries an epoch (TopicConfig.Epoch, persisted in
// state.json; 0 means not fenced) that the controller raises in the global
// metadata at every change of primary. metasync passes it on with
// SetTopicEpoch, and a sender stamps every send with the epoch it read.
// Once a topic is fenced at e, a send is accepted only with an epoch >= e:
// an older or missing epoch is ErrStaleEpoch, and a newer one is adopted
// (the sender read the metadata before this broker's copy caught up). The
// check and the adoption happen under appendMu, so no record with an older
// epoch is appended after a raise returns. Every record stores the epoch it
// was accepted under (commitlog.Message.Epoch).

// SetTopicEpoch raises a topic's epoch; a lower or equal epoch changes
// nothing. Sends already appended are not affected; later sends need at
// least this epoch.
func (b *Broker) SetTopicEpoch(topic string, epoch uint64) error {
	t, err := b.Topic(topic)
	if err != nil || epoch <= t.Epoch {
		return err
	}
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	return b.raiseEpochLocked(topic, epoch)
}

// raiseEpochLocked stores a higher epoch. The caller holds appendMu.
func (b *Broker) raiseEpochLocked(topic string, epoch uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, err := b.topicLocked(topic)
	if err != nil || epoch <= t.Epoch {
		return err
	}
	old := t.Epoch
	t.Epoch = epoch
	if err := b.putTopicLocked(t); err != nil {
		return err
	}
	b.log.Info("topic epoch raised", "topic", topic, "from", old, "to", epoch)
	return nil
}

// admitEpoch checks a send's epoch against its topic's and adopts a newer
// one; it returns the epoch to store in the records. A fenced topic takes
// sends only while this broker leads it and its lease holds (replica.go).
// The caller holds appendMu.
func (b *Broker) admitEpoch(t TopicConfig, epoch uint64) (uint64, error) {
	if epoch == 0 && t.Epoch == 0 {
		return 0, nil
	}
	switch {
	case epoch < t.Epoch:
		return 0, fmt.Errorf("%w: topic %q is fenced at epoch %d on broker %s, the send carries epoch %d",
			ErrStaleEpoch, t.Name, t.Epoch, b.cfg.Name, epoch)
	case epoch == t.Epoch && !t.Order.leads(b.cfg.DC):
		if t.Order.Blocked {
			return 0, fmt.Errorf("%w: topic %q is blocked at epoch %d (switchover in progress); retry shortly", ErrNotLeader, t.Name, t.Epoch)
		}
		return 0, fmt.Errorf("%w: topic %q is led by %s at epoch %d, not by %s", ErrNotLeader, t.Name, t.Order.Primary, t.Epoch, b.cfg.DC)
	}
	if err := b.checkLease(time.Now()); err != nil {
		return 0, err
	}
	if epoch > t.Epoch {
		if err := b.adoptEpochLocked(t, epoch); err != nil {
			return 0, err
		}
	}
	return epoch, nil
}

// adoptEpochLocked takes a newer epoch from a send: its sender read a
// record naming this DC the primary at that epoch. The caller holds
// appendMu.
func (b *Broker) adoptEpochLocked(t TopicConfig, epoch uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := t.Epoch
	t.Epoch = epoch
	t.Order.Primary, t.Order.Blocked = b.cfg.DC, false
	if err := b.putTopicLocked(t); err != nil {
		return err
	}
	b.log.Info("topic epoch adopted from a send", "topic", t.Name, "from", old, "to", epoch)
	return nil
}
