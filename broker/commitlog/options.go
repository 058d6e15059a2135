package commitlog

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/duomq/duomq/internal/vfs"
)

// FlushMode says when appended bytes are fsynced.
type FlushMode int

const (
	// FlushAsync fsyncs every FlushInterval; WaitDurable returns at once.
	FlushAsync FlushMode = iota
	// FlushSync fsyncs as soon as bytes are written (group commit) and
	// WaitDurable blocks until they are covered.
	FlushSync
)

func (m FlushMode) String() string {
	switch m {
	case FlushAsync:
		return "async"
	case FlushSync:
		return "sync"
	}
	return fmt.Sprintf("FlushMode(%d)", int(m))
}

// MarshalText lets configuration files say "async" or "sync".
func (m FlushMode) MarshalText() ([]byte, error) {
	if m != FlushAsync && m != FlushSync {
		return nil, fmt.Errorf("%w: unknown FlushMode %d", ErrBadOptions, int(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText accepts "async" or "sync".
func (m *FlushMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "async":
		*m = FlushAsync
	case "sync":
		*m = FlushSync
	default:
		return fmt.Errorf("%w: flush mode %q is neither async nor sync", ErrBadOptions, b)
	}
	return nil
}

// Defaults and limits of Options.
const (
	DefaultSegmentSize   = 1 << 30
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultMaxRecordSize = 4<<20 + 64<<10 // a 4 MiB body plus headroom for the other fields
	MinSegmentSize       = 1 << 10        // tests use small segments to exercise rolling
)

// Options configure a Log. The zero value of a field means its default,
// except Dir, which is required.
type Options struct {
	Dir string `json:"dir" yaml:"dir"`
	// SegmentSize is the size a segment file grows to before the next
	// record goes to a new one. A record never spans segments: when it does
	// not fit, the segment is closed with an end-of-segment marker.
	SegmentSize int64     `json:"segment-size" yaml:"segment-size"`
	FlushMode   FlushMode `json:"flush-mode" yaml:"flush-mode"`
	// FlushInterval is the period of the background fsync in async mode.
	FlushInterval time.Duration `json:"flush-interval" yaml:"flush-interval"`
	// MaxRecordSize bounds one framed record. Records must also fit in one
	// segment with its end marker, so the effective bound is the smaller of
	// this and SegmentSize minus the marker.
	MaxRecordSize int `json:"max-record-size" yaml:"max-record-size"`
	// RecoverFrom is a position known durable and on a record boundary (the
	// caller's checkpoint). Open rescans from max(RecoverFrom, MinPos), and
	// always at least the whole last segment.
	RecoverFrom int64 `json:"recover-from" yaml:"recover-from"`
	// FS is the filesystem; nil means vfs.Default.
	FS vfs.FS `json:"-" yaml:"-"`
	// Logger receives warnings about recovery and corruption; nil discards.
	Logger *slog.Logger `json:"-" yaml:"-"`
	Hooks  Hooks        `json:"-" yaml:"-"`
}

// Hooks are event callbacks and fault points. Every field may be nil. They
// run inside the log's operations (AfterWrite under the append lock,
// OnFsync and BeforeFsync inside an fsync round), so they must be quick and
// must not call back into the Log.
type Hooks struct {
	// OnFsync is called after each successful fsync round with its duration.
	OnFsync func(d time.Duration)
	// OnCorruption is called whenever a read finds a bad record at pos.
	OnCorruption func(pos int64, err error)
	// BeforeFsync is a fault point: an error it returns is treated exactly
	// like a failed fsync.
	BeforeFsync func() error
	// AfterWrite is a fault point after a batch's bytes are written and
	// before they become visible: an error fails the append like a write
	// error.
	AfterWrite func() error
}

// DefaultOptions returns options with every default filled in; set Dir.
func DefaultOptions() Options {
	return Options{
		SegmentSize:   DefaultSegmentSize,
		FlushMode:     FlushAsync,
		FlushInterval: DefaultFlushInterval,
		MaxRecordSize: DefaultMaxRecordSize,
	}
}

// EnsureDefaults replaces zero values with defaults.
func (o *Options) EnsureDefaults() {
	d := DefaultOptions()
	if o.SegmentSize == 0 {
		o.SegmentSize = d.SegmentSize
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = d.FlushInterval
	}
	if o.MaxRecordSize == 0 {
		o.MaxRecordSize = d.MaxRecordSize
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports unusable options; zero values count as their defaults.
func (o *Options) Validate() error {
	c := *o
	c.EnsureDefaults()
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: Dir is required", ErrBadOptions)
	case c.SegmentSize < MinSegmentSize:
		return fmt.Errorf("%w: SegmentSize %d below %d", ErrBadOptions, c.SegmentSize, MinSegmentSize)
	case c.FlushMode != FlushAsync && c.FlushMode != FlushSync:
		return fmt.Errorf("%w: unknown FlushMode %d", ErrBadOptions, int(c.FlushMode))
	case c.FlushInterval < 0:
		return fmt.Errorf("%w: negative FlushInterval %v", ErrBadOptions, c.FlushInterval)
	case c.MaxRecordSize < MinRecordSize || c.MaxRecordSize > MaxFrameSize:
		return fmt.Errorf("%w: MaxRecordSize %d outside [%d, %d]", ErrBadOptions, c.MaxRecordSize, MinRecordSize, MaxFrameSize)
	case c.RecoverFrom < 0:
		return fmt.Errorf("%w: negative RecoverFrom %d", ErrBadOptions, c.RecoverFrom)
	}
	return nil
}

// maxRecord is the largest record Append accepts: MaxRecordSize, or less
// when a record that size could not share a segment with the end marker.
func (o *Options) maxRecord() int {
	return int(min(int64(o.MaxRecordSize), o.SegmentSize-markerSize))
}
