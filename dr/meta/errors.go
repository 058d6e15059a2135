package meta

import "errors"

// Sentinel errors of the metadata store. Every error a Store or Cache method
// returns wraps one of these (or a context error when the caller's context
// was canceled), so callers and the API boundary test them with errors.Is.
var (
	// ErrNotFound: the DC, topic, group or record does not exist. The
	// message names the command that creates it.
	ErrNotFound = errors.New("meta: not found")
	// ErrExists: a create of something that exists.
	ErrExists = errors.New("meta: already exists")
	// ErrConflict: a compare-revision write lost the race: the value
	// changed since the caller read it. Re-read and decide again.
	ErrConflict = errors.New("meta: revision conflict")
	// ErrInvalid: the input failed validation; nothing was written. Name
	// errors also wrap names.ErrInvalid.
	ErrInvalid = errors.New("meta: invalid")
	// ErrInUse: a delete refused because something still refers to the
	// value (a group subscribes to the topic).
	ErrInUse = errors.New("meta: in use")
	// ErrUnavailable: etcd was unreachable or had no quorum (no leader)
	// within the caller's deadline. A write that fails this way may or may
	// not have been applied; re-read before retrying a compare-revision
	// write.
	ErrUnavailable = errors.New("meta: metadata store unavailable")
	// ErrCorrupt: a stored value does not decode (written by something
	// other than this package, or by a newer schema version). It is never
	// silently replaced.
	ErrCorrupt = errors.New("meta: corrupt value")
	// ErrClosed: the Cache is closed.
	ErrClosed = errors.New("meta: closed")
)
