package broker

import (
	"fmt"
	"time"

	"github.com/duomq/duomq/internal/names"
)

// Flush policies.
const (
	FlushAsync = "async" // fsync every FlushInterval; a crash of the OS may lose that window
	FlushSync  = "sync"  // ack only after an fsync covers the message (group commit)
)

// Config configures one broker. Tags are the configuration keys (kebab-case)
// read by the command line through viper.
type Config struct {
	// Name identifies the broker within its DC (e.g. broker-a-0).
	Name string `mapstructure:"name" json:"name"`
	// DC is the data center this broker belongs to.
	DC string `mapstructure:"dc" json:"dc"`
	// ReplicaSet names the broker's replica set in its DC (empty: a set
	// of its own). The brokers of one set hold the same queues: one leads
	// them and the others copy them as standbys, promoted when the leader
	// is lost (replica_set.go). Set it before the broker first registers:
	// the registration keeps it.
	ReplicaSet string `mapstructure:"replica-set" json:"replica-set,omitempty"`
	// DataDir holds the commitlog, consume queues, index and state files.
	DataDir string `mapstructure:"data-dir" json:"data-dir"`
	// SegmentBytes is the size of one commitlog segment file.
	SegmentBytes int64 `mapstructure:"segment-bytes" json:"segment-bytes"`
	// FlushMode is "sync" (group commit) or "async".
	FlushMode string `mapstructure:"flush-mode" json:"flush-mode"`
	// FlushInterval is the fsync period of async mode.
	FlushInterval time.Duration `mapstructure:"flush-interval" json:"flush-interval"`
	// MaxMessageBytes is the largest body accepted (topics may lower it).
	MaxMessageBytes int64 `mapstructure:"max-message-bytes" json:"max-message-bytes"`
	// RetentionAge deletes whole segments whose newest record is older.
	RetentionAge time.Duration `mapstructure:"retention-age" json:"retention-age"`
	// RetentionBytes deletes the oldest segments while the log is larger (0: no limit).
	RetentionBytes int64 `mapstructure:"retention-bytes" json:"retention-bytes"`
	// RetentionCheckInterval is how often retention runs.
	RetentionCheckInterval time.Duration `mapstructure:"retention-check-interval" json:"retention-check-interval"`
	// CheckpointInterval is how often consume queues, index and offsets are
	// flushed and the recovery checkpoint advanced.
	CheckpointInterval time.Duration `mapstructure:"checkpoint-interval" json:"checkpoint-interval"`
	// QueueEntriesPerFile sizes consume-queue files (20 bytes an entry).
	QueueEntriesPerFile int `mapstructure:"queue-entries-per-file" json:"queue-entries-per-file"`
	// IndexSlots and IndexEntriesPerFile size the id/key index files.
	IndexSlots          int `mapstructure:"index-slots" json:"index-slots"`
	IndexEntriesPerFile int `mapstructure:"index-entries-per-file" json:"index-entries-per-file"`
	// MaxPullWait caps a long-polling pull's wait.
	MaxPullWait time.Duration `mapstructure:"max-pull-wait" json:"max-pull-wait"`
	// ReplicaTimeout bounds how long a send of a sync-replicated topic
	// waits for its follower DCs before it fails (retryable).
	ReplicaTimeout time.Duration `mapstructure:"replica-timeout" json:"replica-timeout"`
	// ISRTimeout is how long a follower DC of a sync-replicated topic may
	// lack a record this broker stored before it leaves the topic's
	// in-sync set (replica_isr.go); shorter than ReplicaTimeout.
	ISRTimeout time.Duration `mapstructure:"isr-timeout" json:"isr-timeout"`
	// Writable and Readable set the broker's initial permission (an
	// operator changes it at run time with SetPermission).
	Writable bool `mapstructure:"writable" json:"writable"`
	Readable bool `mapstructure:"readable" json:"readable"`
	// RetryBackoff is the delay before the n-th redelivery of a popped
	// message whose invisibility ended (entry n-1; the last entry repeats).
	RetryBackoff []time.Duration `mapstructure:"retry-backoff" json:"retry-backoff"`
	// PopReviveInterval is how often expired pops are looked for.
	PopReviveInterval time.Duration `mapstructure:"pop-revive-interval" json:"pop-revive-interval"`
	// IdempotencyCacheSize and IdempotencyWindow bound the in-memory cache
	// of recent idempotent ids (older ones are found through the id index).
	IdempotencyCacheSize int           `mapstructure:"idempotency-cache-size" json:"idempotency-cache-size"`
	IdempotencyWindow    time.Duration `mapstructure:"idempotency-window" json:"idempotency-window"`
	// MaxDelay is the longest delivery delay (__DELIVER_AT) accepted.
	MaxDelay time.Duration `mapstructure:"max-delay" json:"max-delay"`
}

// DefaultRetryBackoff is the redelivery schedule of unordered pops: 1s,
// 5s, 10s, 30s, 1m, 2m ... 10m, 20m, 30m, 1h, then 2h for every later
// attempt.
func DefaultRetryBackoff() []time.Duration {
	return []time.Duration{
		time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
		6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
		20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	}
}

// DefaultConfig returns the configuration of a production broker.
func DefaultConfig() Config {
	return Config{
		Name:                   "broker-0",
		DC:                     "idc-a",
		DataDir:                "data/broker",
		SegmentBytes:           1 << 30,
		FlushMode:              FlushSync,
		FlushInterval:          200 * time.Millisecond,
		MaxMessageBytes:        4 << 20,
		RetentionAge:           72 * time.Hour,
		RetentionCheckInterval: time.Minute,
		CheckpointInterval:     time.Second,
		QueueEntriesPerFile:    300_000,
		IndexSlots:             500_000,
		IndexEntriesPerFile:    2_000_000,
		MaxPullWait:            30 * time.Second,
		ReplicaTimeout:         5 * time.Second,
		ISRTimeout:             2 * time.Second,
		Writable:               true,
		Readable:               true,
		RetryBackoff:           DefaultRetryBackoff(),
		PopReviveInterval:      100 * time.Millisecond,
		IdempotencyCacheSize:   200_000,
		IdempotencyWindow:      10 * time.Minute,
		MaxDelay:               72 * time.Hour,
	}
}

// Validate reports the first bad field, naming its key.
func (c *Config) Validate() error {
	checks := []struct {
		bad bool
		msg string
	}{
		{names.Group(c.Name) != nil, fmt.Sprintf("name %q: %v", c.Name, names.Group(c.Name))},
		{names.DC(c.DC) != nil, fmt.Sprintf("dc %q: %v", c.DC, names.DC(c.DC))},
		{c.ReplicaSet != "" && names.Broker(c.ReplicaSet) != nil, fmt.Sprintf("replica-set %q: %v", c.ReplicaSet, names.Broker(c.ReplicaSet))},
		{c.DataDir == "", "data-dir is empty"},
		{c.SegmentBytes < 64<<10, fmt.Sprintf("segment-bytes %d is below 65536", c.SegmentBytes)},
		{c.FlushMode != FlushSync && c.FlushMode != FlushAsync, fmt.Sprintf("flush-mode %q is not sync or async", c.FlushMode)},
		{c.FlushInterval <= 0, "flush-interval must be positive"},
		{c.MaxMessageBytes <= 0 || c.MaxMessageBytes > 64<<20, fmt.Sprintf("max-message-bytes %d is not in (0, 64 MiB]", c.MaxMessageBytes)},
		{c.SegmentBytes < c.MaxMessageBytes+64<<10, "segment-bytes must exceed max-message-bytes by at least 64 KiB"},
		{c.RetentionAge < 0 || c.RetentionBytes < 0, "retention-age and retention-bytes must not be negative"},
		{c.RetentionCheckInterval <= 0 || c.CheckpointInterval <= 0, "retention-check-interval and checkpoint-interval must be positive"},
		{c.QueueEntriesPerFile < 16 || c.IndexSlots < 16 || c.IndexEntriesPerFile < 16, "queue-entries-per-file, index-slots and index-entries-per-file must be at least 16"},
		{c.MaxPullWait < 0, "max-pull-wait must not be negative"},
		{c.ReplicaTimeout <= 0, "replica-timeout must be positive"},
		{c.ISRTimeout <= 0 || c.ISRTimeout >= c.ReplicaTimeout, fmt.Sprintf("isr-timeout %v must be positive and shorter than replica-timeout %v", c.ISRTimeout, c.ReplicaTimeout)},
		{!validBackoff(c.RetryBackoff), "retry-backoff must list at least one positive duration"},
		{c.PopReviveInterval <= 0, "pop-revive-interval must be positive"},
		{c.IdempotencyCacheSize < 0 || c.IdempotencyWindow < 0, "idempotency-cache-size and idempotency-window must not be negative"},
		{c.MaxDelay <= 0, "max-delay must be positive"},
	}
	for _, ch := range checks {
		if ch.bad {
			return fmt.Errorf("broker config: %s: %w", ch.msg, ErrInvalidArgument)
		}
	}
	return nil
}

func validBackoff(b []time.Duration) bool {
	for _, d := range b {
		if d <= 0 {
			return false
		}
	}
	return len(b) > 0
}
