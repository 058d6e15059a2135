// Package rpcerr turns domain errors into gRPC statuses through a table, at
// the API boundary, and back into reasons on the client side.
//
// Every status carries a google.rpc.ErrorInfo detail whose Reason is a
// stable upper-case word (TOPIC_NOT_FOUND, OFFSET_OUT_OF_RANGE, ...) so that
// clients branch on the reason, not on message text. Domain = "duomq.io".
package rpcerr

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every duomq status.
const Domain = "duomq.io"

// Rule maps one sentinel error to a code and a reason.
type Rule struct {
	Err    error
	Code   codes.Code
	Reason string
}

// Table is an ordered list of rules; the first whose Err matches wins.
type Table []Rule

// Status converts err: the first matching rule, else context errors, else
// codes.Internal with reason INTERNAL. A nil err gives nil.
func (t Table) Status(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, r := range t {
		if errors.Is(err, r.Err) {
			return New(r.Code, r.Reason, err.Error())
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return New(codes.DeadlineExceeded, "DEADLINE_EXCEEDED", err.Error())
	case errors.Is(err, context.Canceled):
		return New(codes.Canceled, "CANCELED", err.Error())
	}
	return New(codes.Internal, "INTERNAL", err.Error())
}

// New builds a status with an ErrorInfo detail.
func New(code codes.Code, reason, msg string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: Domain}); err == nil {
		st = d
	}
	return st.Err()
}

// Reason returns the ErrorInfo reason of a status error ("" if none).
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == Domain {
			return info.Reason
		}
	}
	return ""
}
