package devcluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The error of a process that exited while starting carries the end of
// its log: the log may be gone (a temporary directory) when it is read.
func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "site.log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\nfour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := logTail(path, 2); got != "  three\n  four" {
		t.Fatalf("logTail = %q", got)
	}
	if got := logTail(path, 10); !strings.HasPrefix(got, "  one\n") {
		t.Fatalf("logTail of a short log = %q", got)
	}
	if got := logTail(filepath.Join(t.TempDir(), "missing"), 2); !strings.Contains(got, "no such file") {
		t.Fatalf("logTail of a missing log = %q", got)
	}
}
