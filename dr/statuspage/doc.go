// Package statuspage is the controller's live status page: one HTML page,
// its stylesheet and its script, embedded in the binary and served under
// /ui/ by every controller candidate (internal/daemon puts it next to the
// API on the same listener).
//
// The page shows the DCs (up or down, state, alive brokers), the ordered
// topics (primary, epoch, blocked, replication lag), the traffic weights,
// the transitions in progress, the newest audit records and the drill
// history, and draws per DC, side by side, the consumer lag and the
// replication lag of the last ten minutes.
//
// Invariants:
//   - What the handler serves is static and public: it holds no data and
//     needs no token. The page's script reads the token from the URL
//     fragment (/ui/#token=...; a fragment never reaches the server and is
//     removed from the address bar at once) or asks for it, keeps it in
//     the tab's sessionStorage, and calls GET /v1/status, /v1/audit and
//     /v1/drills every 2 s with "Authorization: Bearer TOKEN".
//   - Nothing is loaded from elsewhere: no CDN, no web font, charts drawn
//     in SVG by the page's own script. The Content-Security-Policy header
//     lets the page load only its own files and call only its own origin.
//   - The lag history lives in the browser tab only (the last ten minutes
//     of the polls it made); the controller keeps none.
//
// Use:
//
//	mux := http.NewServeMux()
//	mux.Handle(statuspage.Prefix, statuspage.Handler())
//	mux.Handle("GET /{$}", statuspage.Handler()) // redirects to /ui/
//	mux.Handle("/", api)
package statuspage
