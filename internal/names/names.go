// Package names validates the names of topics, consumer groups and data
// centers, so that every component refuses a bad name the same way.
//
// A user topic or group name is [A-Za-z0-9_-]{1,127}. System topics derived
// from a group carry a prefix: %RETRY%<group> and %DLQ%<group>.
package names

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid name")

// MaxLen is the longest user name, as in DESIGN.md.
const MaxLen = 127

// System topic prefixes.
const (
	RetryPrefix = "%RETRY%"
	DLQPrefix   = "%DLQ%"
	// MirrorPrefix starts %MIRROR%<dc>%<topic>: another DC's queues of a
	// replicated unordered topic, copied at the same offsets; or, with
	// <topic> a group's %RETRY%<group> or %DLQ%<group>, another DC's retry
	// and dead-letter queues of an unordered group, one queue per broker.
	MirrorPrefix = "%MIRROR%"
)

// StandbyID names a standby broker of a replica set as a follower (the
// identity it fetches with, and the key of its acknowledgements on the
// set's leader); a DC name never contains "/", so it is never a DC's.
func StandbyID(dc, broker string) string { return dc + "/" + broker }

// MirrorTopic is the local copy of dc's queues of topic.
func MirrorTopic(dc, topic string) string { return MirrorPrefix + dc + "%" + topic }

// ParseMirror splits a mirror topic name into its DC and topic.
func ParseMirror(name string) (dc, topic string, ok bool) {
	rest, ok := strings.CutPrefix(name, MirrorPrefix)
	if !ok {
		return "", "", false
	}
	dc, topic, ok = strings.Cut(rest, "%")
	if !ok || check("dc", dc) != nil || strings.HasPrefix(topic, MirrorPrefix) || Topic(topic) != nil {
		return "", "", false
	}
	return dc, topic, true
}

// GroupQueue reports whether topic is a group's retry or dead-letter
// topic, and the group.
func GroupQueue(topic string) (group string, ok bool) {
	for _, p := range []string{RetryPrefix, DLQPrefix} {
		if g, found := strings.CutPrefix(topic, p); found && check("group", g) == nil {
			return g, true
		}
	}
	return "", false
}

// Topic reports whether name is a valid topic name: a user name, or a
// system prefix followed by a valid group name.
func Topic(name string) error {
	if strings.HasPrefix(name, MirrorPrefix) {
		if _, _, ok := ParseMirror(name); !ok {
			return fmt.Errorf("topic %q: system topic must be %s<dc>%%<topic>: %w", name, MirrorPrefix, ErrInvalid)
		}
		return nil
	}
	for _, p := range []string{RetryPrefix, DLQPrefix} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			if err := check("group", rest); err != nil {
				return fmt.Errorf("topic %q: system topic must be %s<group>: %w", name, p, err)
			}
			return nil
		}
	}
	return check("topic", name)
}

// Group reports whether name is a valid consumer group name.
func Group(name string) error { return check("group", name) }

// DC reports whether name is a valid data-center name.
func DC(name string) error { return check("dc", name) }

// Broker validates a broker name (the same characters as a DC's).
func Broker(name string) error { return check("broker", name) }

// RetryTopic is the per-group retry topic.
func RetryTopic(group string) string { return RetryPrefix + group }

// DLQTopic is the per-group dead-letter topic.
func DLQTopic(group string) string { return DLQPrefix + group }

func check(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty: %w", kind, ErrInvalid)
	}
	if len(name) > MaxLen {
		return fmt.Errorf("%s name is %d characters, longer than %d: %w", kind, len(name), MaxLen, ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		if !allowed(name[i]) {
			return fmt.Errorf("%s name %q: character %q not allowed (use A-Z a-z 0-9 _ -): %w", kind, name, name[i], ErrInvalid)
		}
	}
	return nil
}

func allowed(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
