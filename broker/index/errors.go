package index

import "errors"

var (
	// ErrInvalidArgument is returned for a negative position or bad options.
	ErrInvalidArgument = errors.New("index: invalid argument")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("index: closed")

	// ErrCorruption marks an index file that cannot be read: a bad magic
	// number, an unknown version, or a size or count that contradicts its
	// header. It is never repaired silently.
	ErrCorruption = errors.New("index: corruption")
)
