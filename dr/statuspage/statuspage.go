package statuspage

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// Prefix is the path under which the page is served.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// contentSecurityPolicy allows the page's own files and calls to its own
// origin only; the icon is an inline data: URL so that the browser asks
// for no /favicon.ico.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// files are the page's files, at their paths under Prefix.
func files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory is there by construction
	}
	return sub
}

// Handler serves the page's files under Prefix (GET and HEAD only) and
// redirects GET / to Prefix. It needs no token: the files are static and
// the page asks the API for every figure with the operator's token.
func Handler() http.Handler {
	fileServer := http.StripPrefix(Prefix, http.FileServerFS(files()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the status page is read only", http.StatusMethodNotAllowed)
			return
		}
		switch {
		case r.URL.Path == "/":
			// The browser keeps a fragment (#token=...) across the redirect.
			http.Redirect(w, r, Prefix, http.StatusFound)
		case strings.HasPrefix(r.URL.Path, Prefix):
			h := w.Header()
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			// Revalidate, so that a new binary's page is used at once.
			h.Set("Cache-Control", "no-cache")
			fileServer.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
