package index

import "fmt"

// Defaults as in RocketMQ: files of about 50 MB.
const (
	DefaultSlotCount      = 500_000
	DefaultEntriesPerFile = 2_000_000
)

// maxGeometry bounds slots and entries per file (a file stays under 2 GiB).
const maxGeometry = 1 << 26

// Options configures the files an Index creates.
type Options struct {
	// SlotCount is the number of hash slots per file; 0 means the default.
	SlotCount int `json:"slot-count"`
	// EntriesPerFile is the number of entries per file; 0 means the default.
	EntriesPerFile int `json:"entries-per-file"`
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{SlotCount: DefaultSlotCount, EntriesPerFile: DefaultEntriesPerFile}
}

func (o Options) withDefaults() Options {
	if o.SlotCount == 0 {
		o.SlotCount = DefaultSlotCount
	}
	if o.EntriesPerFile == 0 {
		o.EntriesPerFile = DefaultEntriesPerFile
	}
	return o
}

// Validate reports whether the options can be used; zero fields are valid
// and mean the default.
func (o Options) Validate() error {
	if o.SlotCount < 0 || o.SlotCount > maxGeometry {
		return fmt.Errorf("%w: slot count %d not in [0, %d]", ErrInvalidArgument, o.SlotCount, maxGeometry)
	}
	if o.EntriesPerFile < 0 || o.EntriesPerFile > maxGeometry {
		return fmt.Errorf("%w: entries per file %d not in [0, %d]", ErrInvalidArgument, o.EntriesPerFile, maxGeometry)
	}
	return nil
}
