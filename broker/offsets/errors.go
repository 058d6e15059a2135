package offsets

import "errors"

var (
	// ErrCorrupt is returned by Open when the offsets file exists but cannot
	// be trusted. The file is left untouched for inspection.
	ErrCorrupt = errors.New("offsets: corrupt offsets file")

	// ErrClosed is returned by Flush after Close.
	ErrClosed = errors.New("offsets: closed")
)
