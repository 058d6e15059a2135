package controller

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// errBadRequest: a body that is not one JSON object of the request's
// fields.
var errBadRequest = errors.New("bad request")

// maxBodyBytes bounds a request body.
const maxBodyBytes = 1 << 20

// Route is one endpoint of the API.
type Route struct {
	Method string
	Path   string
}

type route struct {
	Route
	// write routes are served by the leader only; other candidates
	// redirect them.
	write  bool
	handle http.HandlerFunc
}

// APIError is the body of every error response.
type APIError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
	// Transitions are the outcomes of a request that ran transitions, of
	// which at least one failed.
	Transitions []APIOutcome `json:"transitions,omitempty"`
}

// APIOutcome is an Outcome with the reason of its error.
type APIOutcome struct {
	Outcome
	Reason string `json:"reason,omitempty"`
}

// APIReport is the body of a successful write.
type APIReport struct {
	Report
	Transitions []APIOutcome `json:"transitions"`
}

// API is the controller's HTTP/JSON API: reads on every candidate, writes
// on the leader (other candidates answer them with 307 to the leader's
// API URL, or 503 while none leads). Every request needs the header
// "Authorization: Bearer <token>".
type API struct {
	c      *Controller
	digest [sha256.Size]byte
	log    *slog.Logger
	routes []route
}

// NewAPI serves c's API to clients presenting token.
func NewAPI(c *Controller, token string) (*API, error) {
	if token == "" {
		return nil, fmt.Errorf("controller api: the token is empty: %w", ErrInvalidConfig)
	}
	a := &API{c: c, digest: sha256.Sum256([]byte(token)), log: c.log}
	a.routes = []route{
		{Route{http.MethodGet, "/v1/status"}, false, a.getStatus},
		{Route{http.MethodGet, "/v1/audit"}, false, a.getAudit},
		{Route{http.MethodGet, "/v1/traffic"}, false, a.getTraffic},
		{Route{http.MethodGet, "/v1/drills"}, false, a.getDrills},
		{Route{http.MethodPost, "/v1/traffic/switch"}, true, post(a, c.SwitchTraffic)},
		{Route{http.MethodPost, "/v1/traffic/weights"}, true, post(a, c.SetWeights)},
		{Route{http.MethodPost, "/v1/traffic/block"}, true, post(a, c.BlockDC)},
		{Route{http.MethodPost, "/v1/traffic/unblock"}, true, post(a, c.UnblockDC)},
		{Route{http.MethodPost, "/v1/switchover"}, true, post(a, c.Switchover)},
		{Route{http.MethodPost, "/v1/failover"}, true, post(a, c.Failover)},
		{Route{http.MethodPost, "/v1/failback"}, true, post(a, c.Failback)},
	}
	return a, nil
}

// Routes lists the endpoints the API serves.
func (a *API) Routes() []Route {
	out := make([]Route, len(a.routes))
	for i, r := range a.routes {
		out[i] = r.Route
	}
	return out
}

// ServeHTTP authenticates, then routes the request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		a.log.Info("api request refused: bad or missing token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="duomq-controller"`)
		writeJSON(w, http.StatusUnauthorized, APIError{Error: "missing or wrong bearer token (Authorization: Bearer TOKEN)", Reason: ReasonUnauthenticated})
		return
	}
	var allowed []string
	for _, rt := range a.routes {
		if rt.Path != r.URL.Path {
			continue
		}
		if rt.Method != r.Method {
			allowed = append(allowed, rt.Method)
			continue
		}
		if rt.write && !a.c.IsLeader() {
			a.redirect(w, r)
			return
		}
		rt.handle(w, r)
		return
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, APIError{Error: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")), Reason: ReasonMethodNotAllowed})
		return
	}
	writeJSON(w, http.StatusNotFound, APIError{Error: fmt.Sprintf("no endpoint %s", r.URL.Path), Reason: ReasonNotFound})
}

// authorized compares the bearer token in constant time (digests, so the
// token's length does not leak either).
func (a *API) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(got[:], a.digest[:]) == 1
}

// redirect sends a write to the leader: 307 to its API URL, or 503 while
// none leads (or its URL is unknown).
func (a *API) redirect(w http.ResponseWriter, r *http.Request) {
	li, ok, err := a.c.Leader(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !ok || li.APIURL == "" || li.ID == a.c.ID() {
		w.Header().Set("Retry-After", "1")
		msg := "no controller leads right now: retry shortly"
		switch {
		case ok && li.ID == a.c.ID():
			// Elected, still resuming the transitions recorded in
			// controller/state before it takes writes.
			msg = fmt.Sprintf("controller %s was just elected and is resuming the transitions in progress: retry shortly", li.ID)
		case ok:
			msg = fmt.Sprintf("controller %s leads but its API URL is not known to %s: retry shortly, or ask it directly", li.ID, a.c.ID())
		}
		writeJSON(w, http.StatusServiceUnavailable, APIError{Error: msg, Reason: ReasonNotLeader})
		return
	}
	loc := strings.TrimSuffix(li.APIURL, "/") + r.URL.RequestURI()
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusTemporaryRedirect, APIError{Error: fmt.Sprintf("controller %s leads: send writes to %s", li.ID, li.APIURL), Reason: ReasonNotLeader})
}

// post serves a write: decode the request, run it, answer its report.
func post[Req any](a *API, fn func(ctx context.Context, req Req) (Report, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := decodeBody(w, r, &req); err != nil {
			a.fail(w, r, err)
			return
		}
		rep, err := fn(r.Context(), req)
		if err != nil && errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrInterrupted) {
			a.redirect(w, r)
			return
		}
		if err != nil {
			status, reason := httpError(err)
			log := a.log.Info
			if status >= 500 {
				log = a.log.Warn
			}
			log("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "reason", reason, "err", err)
			writeJSON(w, status, APIError{Error: err.Error(), Reason: reason, Transitions: apiOutcomes(rep.Transitions)})
			return
		}
		a.log.Info("api request done", "method", r.Method, "path", r.URL.Path, "transitions", len(rep.Transitions), "changed", rep.Changed)
		writeJSON(w, http.StatusOK, APIReport{Report: rep, Transitions: apiOutcomes(rep.Transitions)})
	}
}

func apiOutcomes(os []Outcome) []APIOutcome {
	out := make([]APIOutcome, len(os))
	for i, o := range os {
		out[i].Outcome = o
		if o.Err != nil {
			_, out[i].Reason = httpError(o.Err)
		}
	}
	return out
}

// decodeBody reads exactly one JSON object with only the request's fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: the request body is empty: send a JSON object", errBadRequest)
		}
		return fmt.Errorf("%w: request body: %v", errBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: request body: data after the JSON object", errBadRequest)
	}
	return nil
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, reason := httpError(err)
	a.log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	writeJSON(w, status, APIError{Error: err.Error(), Reason: reason})
}

func (a *API) getStatus(w http.ResponseWriter, r *http.Request) {
	st, err := a.c.Status(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *API) getTraffic(w http.ResponseWriter, r *http.Request) {
	tv, err := a.c.Traffic(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tv)
}

// limitParam reads the query parameter limit: 0 when absent.
func limitParam(r *http.Request, maxLimit int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, errorf(ErrInvalid, "limit %q: use a number 1..%d", s, maxLimit)
	}
	return n, nil
}

func (a *API) getAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, MaxAuditLimit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	recs, err := a.c.Audit(r.Context(), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Records []AuditRecord `json:"records"`
	}{recs})
}

func (a *API) getDrills(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r, MaxDrillLimit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	drills, err := a.c.Drills(r.Context(), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Drills []DrillSummary `json:"drills"`
	}{drills})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
