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
)

// Topic reports whether name is a valid topic name: a user name, or a
// system prefix followed by a valid group name.
func Topic(name string) error {
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
