package commitlog

import "errors"

var (
	// ErrCorruption marks stored bytes that fail validation: a bad length,
	// an unknown format version, a checksum mismatch or a field overrunning
	// its record. It is always wrapped with the detail of what was wrong and
	// is never swallowed: a corrupt record is reported, never returned.
	ErrCorruption = errors.New("commitlog: corruption")

	// ErrRecordTooLarge is returned by Append for a record longer than
	// Options.MaxRecordSize (or than fits in one segment).
	ErrRecordTooLarge = errors.New("commitlog: record too large")

	// ErrBadRecord is returned by Append for an element that is not one
	// framed record as produced by AppendRecord (length field disagreeing
	// with the slice, unknown version). Nothing of the batch is written.
	ErrBadRecord = errors.New("commitlog: malformed record")

	// ErrOutOfRange is returned for positions below MinPos or above
	// WrittenPos, and for reads that would cross a segment boundary.
	ErrOutOfRange = errors.New("commitlog: position out of range")

	// ErrClosed is returned by operations on a closed Log.
	ErrClosed = errors.New("commitlog: closed")

	// ErrLogFailed is returned once a write or an fsync has failed: the
	// state of the file past the durable position is then unknown, so the
	// log refuses further appends until it is reopened (recovery truncates
	// whatever is torn). The error also wraps the original I/O error.
	ErrLogFailed = errors.New("commitlog: log failed")

	// ErrBadOptions is returned by Options.Validate and Open for unusable
	// options.
	ErrBadOptions = errors.New("commitlog: bad options")
)
