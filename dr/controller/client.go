package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client calls the controller API for operators' tools (the CLI, the
// drill runner). It tries the candidates in order and uses the first that
// answers, so a candidate whose site is down is skipped; a candidate that
// does not lead redirects writes to the leader, and the client keeps its
// token across that redirect (Go drops it across hosts). While no
// candidate leads (an election or a new leader's resume is under way) the
// API answers 503 NOT_LEADER with Retry-After; the client waits and asks
// again for up to NotLeaderWait, since such a write was refused before it
// changed anything.
type Client struct {
	// NotLeaderWait bounds the retries of 503 NOT_LEADER answers (0: none).
	NotLeaderWait time.Duration

	bases []string
	auth  string
	hc    *http.Client
}

// DefaultNotLeaderWait covers an election (the election TTL) and a new
// leader's resume of the transitions in progress.
const DefaultNotLeaderWait = 10 * time.Second

// NewClient returns a client of the candidates at bases (API URLs) with
// token; tlsCfg (nil: the system's roots) checks https candidates.
func NewClient(bases []string, token string, tlsCfg *tls.Config) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg
	}
	c := &Client{auth: "Bearer " + token, NotLeaderWait: DefaultNotLeaderWait}
	for _, b := range bases {
		c.bases = append(c.bases, strings.TrimSuffix(b, "/"))
	}
	c.hc = &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("controller API: too many redirects")
		}
		req.Header.Set("Authorization", c.auth)
		return nil
	}}
	return c
}

// StatusError is an error answer of the controller API.
type StatusError struct {
	Status int
	Body   APIError

	retryAfter time.Duration // the answer's Retry-After, when it had one
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("controller: %s (HTTP %d, %s)", e.Body.Error, e.Status, e.Body.Reason)
}

// Do sends in (when not nil) as JSON to the first candidate that answers
// and decodes a 200 answer into out; any other answer is a *StatusError.
// A 503 NOT_LEADER answer is retried after its Retry-After for up to
// NotLeaderWait.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	deadline := time.Now().Add(c.NotLeaderWait)
	for {
		err := c.doOnce(ctx, method, path, in, out)
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || se.Body.Reason != ReasonNotLeader {
			return err
		}
		wait := se.retryAfter
		if wait <= 0 {
			wait = time.Second
		}
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// doOnce is one round of Do over the candidates.
func (c *Client) doOnce(ctx context.Context, method, path string, in, out any) error {
	if len(c.bases) == 0 {
		return errors.New("controller API: no candidate URL")
	}
	var err error
	for _, base := range c.bases {
		var answered bool
		if answered, err = c.doAt(ctx, base, method, path, in, out); answered || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// doAt is Do against one candidate; answered is false when it could not
// be reached.
func (c *Client) doAt(ctx context.Context, base, method, path string, in, out any) (answered bool, err error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return true, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return false, fmt.Errorf("controller API %s: %w", base, err)
	}
	req.Header.Set("Authorization", c.auth)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("controller API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return true, fmt.Errorf("controller API %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &StatusError{Status: resp.StatusCode}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			ae.retryAfter = time.Duration(secs) * time.Second
		}
		if json.Unmarshal(b, &ae.Body) != nil || ae.Body.Error == "" {
			ae.Body.Error = strings.TrimSpace(string(b))
			if ae.Body.Error == "" {
				ae.Body.Error = http.StatusText(resp.StatusCode)
			}
		}
		return true, ae
	}
	if err := json.Unmarshal(b, out); err != nil {
		return true, fmt.Errorf("controller API %s %s: answer: %w", method, path, err)
	}
	return true, nil
}
