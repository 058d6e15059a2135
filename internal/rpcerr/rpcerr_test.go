package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var errA = errors.New("a")

func TestTable(t *testing.T) {
	tab := Table{{errA, codes.NotFound, "A_MISSING"}}
	tests := []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{fmt.Errorf("wrapped: %w", errA), codes.NotFound, "A_MISSING"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "DEADLINE_EXCEEDED"},
		{errors.New("boom"), codes.Internal, "INTERNAL"},
	}
	for _, tt := range tests {
		got := tab.Status(tt.err)
		if status.Code(got) != tt.code || Reason(got) != tt.reason {
			t.Errorf("Status(%v) = %v/%q, want %v/%q", tt.err, status.Code(got), Reason(got), tt.code, tt.reason)
		}
	}
	if tab.Status(nil) != nil {
		t.Error("nil error mapped to a status")
	}
}
