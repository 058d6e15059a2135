package consumequeue

import "fmt"

// DefaultEntriesPerFile gives 6 MB files, as in RocketMQ.
const DefaultEntriesPerFile = 300_000

// maxEntriesPerFile keeps a file's mapping at 1 GiB at most.
const maxEntriesPerFile = (1 << 30) / EntrySize

// Options configures a Queue.
type Options struct {
	// EntriesPerFile is the number of slots per file; 0 means the default.
	// It must not change for an existing queue: files of another size are
	// reported as ErrCorruption.
	EntriesPerFile int `json:"entries-per-file"`
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{EntriesPerFile: DefaultEntriesPerFile}
}

// withDefaults fills zero fields with their defaults.
func (o Options) withDefaults() Options {
	if o.EntriesPerFile == 0 {
		o.EntriesPerFile = DefaultEntriesPerFile
	}
	return o
}

// Validate reports whether the options can be used.
func (o Options) Validate() error {
	if o.EntriesPerFile < 0 || o.EntriesPerFile > maxEntriesPerFile {
		return fmt.Errorf("%w: entries per file %d not in [0, %d] (0 = default)", ErrInvalidArgument, o.EntriesPerFile, maxEntriesPerFile)
	}
	return nil
}
