package replicator

import (
	"fmt"
	"time"

	"github.com/duomq/duomq/internal/names"
)

// Config configures a replicator.
type Config struct {
	// DC is the data center this replicator copies into.
	DC string `mapstructure:"dc" json:"dc"`
	// FetchWait is how long a fetch long-polls the leader.
	FetchWait time.Duration `mapstructure:"fetch-wait" json:"fetch-wait"`
	// FetchMaxMessages bounds one fetch.
	FetchMaxMessages int `mapstructure:"fetch-max-messages" json:"fetch-max-messages"`
	// RetryBackoff is the pause after a failed step.
	RetryBackoff time.Duration `mapstructure:"retry-backoff" json:"retry-backoff"`
	// OffsetSyncInterval is how often consumer offsets are copied.
	OffsetSyncInterval time.Duration `mapstructure:"offset-sync-interval" json:"offset-sync-interval"`
}

// DefaultConfig returns the defaults (DC must still be set).
func DefaultConfig() Config {
	return Config{FetchWait: time.Second, FetchMaxMessages: 256, RetryBackoff: 100 * time.Millisecond,
		OffsetSyncInterval: 500 * time.Millisecond}
}

// Validate reports the first bad field, naming its key.
func (c Config) Validate() error {
	switch {
	case names.DC(c.DC) != nil:
		return fmt.Errorf("replicator config: dc %q: %v", c.DC, names.DC(c.DC))
	case c.FetchWait <= 0 || c.RetryBackoff <= 0:
		return fmt.Errorf("replicator config: fetch-wait and retry-backoff must be positive")
	case c.FetchMaxMessages <= 0 || c.FetchMaxMessages > 1024:
		return fmt.Errorf("replicator config: fetch-max-messages %d not in [1, 1024]", c.FetchMaxMessages)
	case c.OffsetSyncInterval <= 0 || c.OffsetSyncInterval > time.Second:
		return fmt.Errorf("replicator config: offset-sync-interval %v not in (0, 1s]: offsets are synced at least every second", c.OffsetSyncInterval)
	}
	return nil
}
