package controller

import (
	"errors"
	"fmt"
)

// Sentinel errors of the controller. Every error an exported method
// returns wraps one of these, a dr/meta sentinel (meta.ErrConflict,
// meta.ErrUnavailable, ...) or a context error. The API maps them to HTTP
// statuses and reasons in one table (api_errors.go).
var (
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("controller: invalid config")
	// ErrInvalid: a malformed request (missing or contradictory fields,
	// a bad weight, a bad name); nothing was changed.
	ErrInvalid = errors.New("controller: invalid request")
	// ErrUnknownTopic and ErrUnknownDC: the request names a topic or DC
	// that is not in the metadata.
	ErrUnknownTopic = errors.New("controller: unknown topic")
	ErrUnknownDC    = errors.New("controller: unknown dc")
	// ErrNotOrdered: a switchover, failover or failback of an unordered
	// topic (those have no primary; move their traffic with weights).
	ErrNotOrdered = errors.New("controller: topic is not ordered")
	// ErrDCDown and ErrDCDraining: the target DC's state forbids moving
	// writes to it.
	ErrDCDown     = errors.New("controller: dc is down")
	ErrDCDraining = errors.New("controller: dc is draining")
	// ErrNoAliveBrokers: the DC has no broker liveness record, so it cannot
	// take writes (as a target) or be fenced (as a switchover's source).
	ErrNoAliveBrokers = errors.New("controller: dc has no alive brokers")
	// ErrDCBlocked: the DC is blocked for writes by the traffic policy.
	ErrDCBlocked = errors.New("controller: dc is blocked for writes")
	// ErrLastDC: the change would leave no DC taking unordered writes.
	ErrLastDC = errors.New("controller: no dc would take writes")
	// ErrAlreadyPrimary: the target DC is already the topic's primary.
	ErrAlreadyPrimary = errors.New("controller: dc is already the primary")
	// ErrPrimaryAlive: an unforced failover while the primary DC still has
	// alive brokers (use a switchover, or force).
	ErrPrimaryAlive = errors.New("controller: primary dc is alive")
	// ErrPrimaryDown: a switchover or failback whose current primary has
	// no alive brokers to fence (use a failover).
	ErrPrimaryDown = errors.New("controller: primary dc has no alive brokers")
	// ErrNoTarget: no other DC can take a failed-over topic.
	ErrNoTarget = errors.New("controller: no dc can take over")
	// ErrBusy: another transition of the same topic is in progress.
	ErrBusy = errors.New("controller: transition in progress")
	// ErrConflict: the topic's record changed under the transition (a
	// lost compare-revision race, or another writer); nothing more was
	// done. Wraps meta.ErrConflict when that is the cause.
	ErrConflict = errors.New("controller: concurrent change")
	// ErrCatchUpTimeout: the target's follower copies did not reach the
	// fenced ends within the catch-up timeout; the switchover rolled back.
	ErrCatchUpTimeout = errors.New("controller: follower did not catch up")
	// ErrFenceFailed: a broker of the primary DC could not be fenced; the
	// switchover rolled back.
	ErrFenceFailed = errors.New("controller: fence failed")
	// ErrNotLeader: the write needs the leading controller and this one is
	// not (the API redirects to the leader).
	ErrNotLeader = errors.New("controller: not the leader")
	// ErrInterrupted: the transition stopped in the middle (leadership
	// lost, or a fault point); it stays in controller/state and the next
	// leader resumes it.
	ErrInterrupted = errors.New("controller: transition interrupted")
	// ErrBroker: a broker call failed.
	ErrBroker = errors.New("controller: broker call failed")
	// ErrClosed: the controller is closed.
	ErrClosed = errors.New("controller: closed")
)

// detailed is an error of a sentinel's kind whose message stands on its
// own (the API answers it to operators with the sentinel's reason code).
type detailed struct {
	sentinel error
	cause    error
}

func (e *detailed) Error() string   { return e.cause.Error() }
func (e *detailed) Unwrap() []error { return []error{e.sentinel, e.cause} }

// errorf returns an error wrapping sentinel (and any %w argument) with the
// formatted message.
func errorf(sentinel error, format string, args ...any) error {
	return &detailed{sentinel: sentinel, cause: fmt.Errorf(format, args...)}
}
