package member

import "errors"

var (
	// ErrInvalidConfig is wrapped by every error of Config.Validate.
	ErrInvalidConfig = errors.New("etcd member: invalid config")
	// ErrNotReady: the member did not become ready (joined and able to
	// serve) before the context or the start timeout ended, usually because
	// no quorum of the other members was reachable.
	ErrNotReady = errors.New("etcd member: not ready")
)
