package meta

import "fmt"

// kindError is an error whose message is written for an operator and that
// wraps one of this package's sentinels (and possibly a cause) without
// repeating the sentinel's text.
type kindError struct {
	kind  error
	inner error
}

func (e *kindError) Error() string   { return e.inner.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.inner} }

// errorf formats an error of the given kind; %w in format wraps causes.
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, inner: fmt.Errorf(format, args...)}
}

// Governance: a reference to something that does not exist says how to
// create it. The commands are duomq's CLI.

func topicNotFound(name string) error {
	return errorf(ErrNotFound, "topic %q does not exist: create it with: duomq topic create %s --queues N", name, name)
}

func groupNotFound(name string) error {
	return errorf(ErrNotFound, "group %q does not exist: create it with: duomq group create %s", name, name)
}

func dcNotFound(name string) error {
	return errorf(ErrNotFound, "dc %q does not exist: register it with: duomq dc put %s --cidr CIDR", name, name)
}

func orderedNotFound(topic string) error {
	return errorf(ErrNotFound, "topic %q is not an ordered topic (no ordered/%s record): create it with: duomq topic create %s --queues N --ordered --primary DC", topic, topic, topic)
}

func rawNotFound(key string) error {
	return errorf(ErrNotFound, "%s does not exist", key)
}
