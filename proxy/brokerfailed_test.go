package proxy

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/internal/rpcerr"
)

// TestBrokerFailedOnlyWhenTheBrokerDoesNotAnswer: a broker that refuses a
// write with a reason answered, and must not open its breaker; a
// transport failure or a timeout without an answer counts.
func TestBrokerFailedOnlyWhenTheBrokerDoesNotAnswer(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"follower out of sync", rpcerr.New(codes.Unavailable, reasonBrokerReplicaTimeout, "idc-b out of the in-sync set"), false},
		{"lease lapsed", rpcerr.New(codes.Unavailable, reasonBrokerLeaseExpired, "lease"), false},
		{"not the leader", rpcerr.New(codes.FailedPrecondition, reasonBrokerNotLeader, "moved"), false},
		{"unreachable", status.Error(codes.Unavailable, "connection refused"), true},
		{"no answer in time", status.Error(codes.DeadlineExceeded, "deadline"), true},
		{"breaker open", errBreakerOpen, true},
		{"invalid argument", status.Error(codes.InvalidArgument, "bad"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := brokerFailed(tt.err); got != tt.want {
				t.Fatalf("brokerFailed(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
