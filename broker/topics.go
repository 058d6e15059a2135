package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/duomq/duomq/internal/atomicfile"
	"github.com/duomq/duomq/internal/names"
)

// Perm is a read/write permission, as RocketMQ's perm bits.
type Perm uint8

// Permission bits.
const (
	PermWrite     Perm = 2
	PermRead      Perm = 4
	PermReadWrite      = PermRead | PermWrite
)

// CanWrite reports whether p allows writes.
func (p Perm) CanWrite() bool { return p&PermWrite != 0 }

// CanRead reports whether p allows reads.
func (p Perm) CanRead() bool { return p&PermRead != 0 }

func (p Perm) String() string {
	switch p & PermReadWrite {
	case PermReadWrite:
		return "read-write"
	case PermRead:
		return "read-only"
	case PermWrite:
		return "write-only"
	}
	return "none"
}

// MaxQueues bounds a topic's queue count.
const MaxQueues = 1024

// TopicConfig is one topic as this broker hosts it.
type TopicConfig struct {
	Name   string `json:"name"`
	Queues uint32 `json:"queues"`
	Perm   Perm   `json:"perm"`
	// MaxMessageBytes lowers the broker's limit for this topic (0: broker's).
	MaxMessageBytes int64 `json:"max-message-bytes,omitempty"`
	// Epoch is the fencing token of an ordered topic (0: not fenced). It
	// only grows; see SetTopicEpoch.
	Epoch uint64 `json:"epoch,omitempty"`
	// Order is the rest of an ordered topic's fencing record (who leads in
	// Epoch) and its replication; see SetTopicOrder.
	Order Order `json:"order,omitzero"`
}

func (t TopicConfig) validate(brokerMax int64) error {
	if err := names.Topic(t.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	if t.Queues == 0 || t.Queues > MaxQueues {
		return fmt.Errorf("%w: topic %q: queues %d not in [1, %d]", ErrInvalidArgument, t.Name, t.Queues, MaxQueues)
	}
	if t.Perm&^PermReadWrite != 0 {
		return fmt.Errorf("%w: topic %q: permission %d is not a combination of read (4) and write (2)", ErrInvalidArgument, t.Name, t.Perm)
	}
	if t.MaxMessageBytes < 0 || t.MaxMessageBytes > brokerMax {
		return fmt.Errorf("%w: topic %q: max-message-bytes %d not in [0, %d]", ErrInvalidArgument, t.Name, t.MaxMessageBytes, brokerMax)
	}
	return nil
}

// state is the broker's persisted control state: its topics and permission.
type state struct {
	Version int                    `json:"version"`
	Perm    Perm                   `json:"perm"`
	Topics  map[string]TopicConfig `json:"topics"`
}

const stateFile = "state.json"

func loadState(dir string, initial Perm) (state, error) {
	st := state{Version: 1, Perm: initial, Topics: map[string]TopicConfig{}}
	b, err := atomicfile.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%w: %s: %v", ErrCorruption, stateFile, err)
	}
	if st.Version != 1 {
		return st, fmt.Errorf("%s: unsupported version %d", stateFile, st.Version)
	}
	if st.Topics == nil {
		st.Topics = map[string]TopicConfig{}
	}
	return st, nil
}

func (st state) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, stateFile), b, 0o644)
}

func (st state) sortedTopics() []TopicConfig {
	out := make([]TopicConfig, 0, len(st.Topics))
	for _, t := range st.Topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
