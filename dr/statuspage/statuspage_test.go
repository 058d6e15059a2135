package statuspage

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestStatusPageHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		method, path string
		status       int
		contentType  string // prefix
		body         string // substring
		location     string
	}{
		{"GET", "/ui/", 200, "text/html", `<script src="app.js" defer></script>`, ""},
		{"HEAD", "/ui/", 200, "text/html", "", ""},
		{"GET", "/ui/app.js", 200, "text/javascript", "../v1/drills", ""},
		{"GET", "/ui/style.css", 200, "text/css", "svg.chart", ""},
		{"GET", "/", http.StatusFound, "", "", "/ui/"},
		{"GET", "/ui/index.html", http.StatusMovedPermanently, "", "", "./"},
		{"GET", "/ui/nothing.js", 404, "", "", ""},
		{"GET", "/elsewhere", 404, "", "", ""},
		{"POST", "/ui/", http.StatusMethodNotAllowed, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			if _, err := io.Copy(&b, resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b.String())
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %q...", ct, tt.contentType)
			}
			if !strings.Contains(b.String(), tt.body) {
				t.Errorf("body lacks %q", tt.body)
			}
			if loc := resp.Header.Get("Location"); loc != tt.location {
				t.Errorf("Location %q, want %q", loc, tt.location)
			}
			if tt.status == 200 {
				if csp := resp.Header.Get("Content-Security-Policy"); csp != contentSecurityPolicy {
					t.Errorf("Content-Security-Policy %q", csp)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Error("no X-Content-Type-Options: nosniff")
				}
			}
		})
	}
}

// TestStatusPageLoadsNothingFromElsewhere: every file of the page refers
// only to the page's own files (the SVG namespace is a name, not a
// download).
func TestStatusPageLoadsNothingFromElsewhere(t *testing.T) {
	url := regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s'"<>)]*|(?:src|href)\s*=\s*["']//|url\(\s*["']?//|@import`)
	ref := regexp.MustCompile(`(?:src|href)="([^"]*)"`)
	files := files()
	n := 0
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := fs.ReadFile(files, path)
		if err != nil {
			return err
		}
		for _, m := range url.FindAllString(string(b), -1) {
			if m != "http://www.w3.org/2000/svg" {
				t.Errorf("%s refers to %q", path, m)
			}
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			if strings.HasPrefix(m[1], "data:") {
				continue
			}
			if _, err := fs.Stat(files, m[1]); err != nil {
				t.Errorf("%s refers to %q, which is not one of the page's files", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("%d files embedded, want index.html, app.js and style.css", n)
	}
}
