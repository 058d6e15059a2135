package controller

import (
	"context"
	"errors"
	"net/http"

	"github.com/duomq/duomq/dr/meta"
)

// Reasons of API errors, the "reason" of an error body.
const (
	ReasonUnauthenticated      = "UNAUTHENTICATED"
	ReasonBadRequest           = "BAD_REQUEST"
	ReasonInvalidArgument      = "INVALID_ARGUMENT"
	ReasonNotFound             = "NOT_FOUND"
	ReasonMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	ReasonUnknownTopic         = "UNKNOWN_TOPIC"
	ReasonUnknownDC            = "UNKNOWN_DC"
	ReasonNotOrdered           = "NOT_ORDERED"
	ReasonDCDown               = "DC_DOWN"
	ReasonDCDraining           = "DC_DRAINING"
	ReasonNoAliveBrokers       = "NO_ALIVE_BROKERS"
	ReasonDCBlocked            = "DC_BLOCKED"
	ReasonLastDC               = "LAST_DC"
	ReasonAlreadyPrimary       = "ALREADY_PRIMARY"
	ReasonPrimaryAlive         = "PRIMARY_ALIVE"
	ReasonPrimaryDown          = "PRIMARY_DOWN"
	ReasonNoTarget             = "NO_TARGET_DC"
	ReasonTransitionInProgress = "TRANSITION_IN_PROGRESS"
	ReasonConflict             = "CONFLICT"
	ReasonCatchUpTimeout       = "CATCH_UP_TIMEOUT"
	ReasonFenceFailed          = "FENCE_FAILED"
	ReasonBrokerUnavailable    = "BROKER_UNAVAILABLE"
	ReasonNotLeader            = "NOT_LEADER"
	ReasonInterrupted          = "INTERRUPTED"
	ReasonMetaUnavailable      = "METADATA_UNAVAILABLE"
	ReasonTimeout              = "TIMEOUT"
	ReasonInternal             = "INTERNAL"
)

// errorTable maps the controller's and the metadata's errors to HTTP
// statuses and reasons; the first match wins, so wrapped causes that are
// more specific come first.
var errorTable = []struct {
	err    error
	status int
	reason string
}{
	{ErrInterrupted, http.StatusServiceUnavailable, ReasonInterrupted},
	{errBadRequest, http.StatusBadRequest, ReasonBadRequest},
	{ErrInvalid, http.StatusBadRequest, ReasonInvalidArgument},
	{ErrNotOrdered, http.StatusBadRequest, ReasonNotOrdered},
	{ErrUnknownTopic, http.StatusNotFound, ReasonUnknownTopic},
	{ErrUnknownDC, http.StatusNotFound, ReasonUnknownDC},
	{ErrDCDown, http.StatusConflict, ReasonDCDown},
	{ErrDCDraining, http.StatusConflict, ReasonDCDraining},
	{ErrNoAliveBrokers, http.StatusConflict, ReasonNoAliveBrokers},
	{ErrDCBlocked, http.StatusConflict, ReasonDCBlocked},
	{ErrLastDC, http.StatusConflict, ReasonLastDC},
	{ErrAlreadyPrimary, http.StatusConflict, ReasonAlreadyPrimary},
	{ErrPrimaryAlive, http.StatusConflict, ReasonPrimaryAlive},
	{ErrPrimaryDown, http.StatusConflict, ReasonPrimaryDown},
	{ErrNoTarget, http.StatusConflict, ReasonNoTarget},
	{ErrBusy, http.StatusConflict, ReasonTransitionInProgress},
	{ErrConflict, http.StatusConflict, ReasonConflict},
	{meta.ErrConflict, http.StatusConflict, ReasonConflict},
	{ErrCatchUpTimeout, http.StatusGatewayTimeout, ReasonCatchUpTimeout},
	{ErrFenceFailed, http.StatusBadGateway, ReasonFenceFailed},
	{ErrBroker, http.StatusBadGateway, ReasonBrokerUnavailable},
	{ErrNotLeader, http.StatusServiceUnavailable, ReasonNotLeader},
	{ErrClosed, http.StatusServiceUnavailable, ReasonNotLeader},
	{meta.ErrUnavailable, http.StatusServiceUnavailable, ReasonMetaUnavailable},
	{meta.ErrNotFound, http.StatusNotFound, ReasonNotFound},
	{meta.ErrInvalid, http.StatusBadRequest, ReasonInvalidArgument},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, ReasonTimeout},
}

// httpError returns the status and reason of err.
func httpError(err error) (int, string) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.status, e.reason
		}
	}
	return http.StatusInternalServerError, ReasonInternal
}

// Reasons lists every reason an error body may carry.
func Reasons() []string {
	return []string{
		ReasonUnauthenticated, ReasonBadRequest, ReasonInvalidArgument, ReasonNotFound, ReasonMethodNotAllowed,
		ReasonUnknownTopic, ReasonUnknownDC, ReasonNotOrdered, ReasonDCDown, ReasonDCDraining, ReasonNoAliveBrokers,
		ReasonDCBlocked, ReasonLastDC, ReasonAlreadyPrimary, ReasonPrimaryAlive, ReasonPrimaryDown, ReasonNoTarget,
		ReasonTransitionInProgress, ReasonConflict, ReasonCatchUpTimeout, ReasonFenceFailed, ReasonBrokerUnavailable,
		ReasonNotLeader, ReasonInterrupted, ReasonMetaUnavailable, ReasonTimeout, ReasonInternal,
	}
}
