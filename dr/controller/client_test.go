package controller

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// notLeaderServer answers 503 NOT_LEADER (Retry-After: 1) to the first
// refusals calls, then 200.
func notLeaderServer(t *testing.T, refusals int32) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			writeJSON(w, http.StatusUnauthorized, APIError{Error: "no token", Reason: ReasonUnauthenticated})
			return
		}
		if calls.Add(1) <= refusals {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, APIError{Error: "no controller leads right now", Reason: ReasonNotLeader})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestClientRetriesNotLeader(t *testing.T) {
	srv, calls := notLeaderServer(t, 1)
	c := NewClient([]string{srv.URL}, "tok", nil)
	var out map[string]string
	if err := c.Do(context.Background(), http.MethodPost, "/v1/failover", map[string]string{}, &out); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got := calls.Load(); got != 2 || out["ok"] != "yes" {
		t.Fatalf("calls %d, answer %v; want 2 calls and the 200 answer", got, out)
	}
}

func TestClientGivesUpAfterNotLeaderWait(t *testing.T) {
	srv, calls := notLeaderServer(t, 100)
	c := NewClient([]string{srv.URL}, "tok", nil)
	c.NotLeaderWait = 1500 * time.Millisecond
	err := c.Do(context.Background(), http.MethodPost, "/v1/failover", map[string]string{}, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || se.Body.Reason != ReasonNotLeader {
		t.Fatalf("Do: %v; want the 503 NOT_LEADER answer", err)
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("calls %d; want 2 (one retry within 1.5 s)", got)
	}
}

func TestClientDoesNotRetryOtherErrors(t *testing.T) {
	srv, calls := notLeaderServer(t, 0)
	c := NewClient([]string{srv.URL}, "wrong", nil)
	err := c.Do(context.Background(), http.MethodGet, "/v1/status", nil, nil)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("Do: %v; want 401", err)
	}
	if got := calls.Load(); got != 0 {
		t.Fatalf("calls counted %d; want 0", got)
	}
}
