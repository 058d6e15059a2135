package consumequeue

import "errors"

var (
	// ErrOutOfRange is returned when a read asks for an offset outside
	// [MinOffset, MaxOffset) (or beyond MaxOffset for Range). Errors wrapping
	// it name the offset and the current bounds.
	ErrOutOfRange = errors.New("consumequeue: offset out of range")

	// ErrOffsetMismatch is returned by Append when the offset is not
	// MaxOffset, which means the caller's idea of the queue is stale.
	ErrOffsetMismatch = errors.New("consumequeue: offset mismatch")

	// ErrInvalidEntry is returned by Append for an entry that could not be
	// told apart from an empty slot or breaks the Pos order: Size <= 0,
	// Pos < 0, or Pos not greater than the previous entry's Pos.
	ErrInvalidEntry = errors.New("consumequeue: invalid entry")

	// ErrInvalidArgument is returned for a bad option or a negative offset.
	ErrInvalidArgument = errors.New("consumequeue: invalid argument")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("consumequeue: closed")

	// ErrCorruption marks on-disk state that cannot be the result of a crash:
	// a file of the wrong size, a gap between files, or an invalid entry
	// below MaxOffset. It is never repaired silently.
	ErrCorruption = errors.New("consumequeue: corruption")
)
