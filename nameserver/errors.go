package nameserver

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/duomq/duomq/internal/rpcerr"
)

var (
	// ErrInvalid: a malformed registration or request.
	ErrInvalid = errors.New("nameserver: invalid request")
	// ErrNoRoute: no live broker hosts the topic.
	ErrNoRoute = errors.New("nameserver: no route")
	// ErrUnavailable: no nameserver answered and no cached route exists.
	ErrUnavailable = errors.New("nameserver: unavailable")
)

// Reasons of the nameserver's error statuses.
const (
	ReasonInvalid = "INVALID_ARGUMENT"
	ReasonNoRoute = "NO_ROUTE"
)

var errTable = rpcerr.Table{
	{Err: ErrInvalid, Code: codes.InvalidArgument, Reason: ReasonInvalid},
	{Err: ErrNoRoute, Code: codes.NotFound, Reason: ReasonNoRoute},
}
