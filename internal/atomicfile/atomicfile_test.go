package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteRead(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{"empty", []byte{}, 0o644},
		{"small", []byte(`{"version":1}`), 0o600},
		{"large", bytes.Repeat([]byte("x"), 1<<20), 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.json")
			if err := WriteFile(path, tt.data, tt.perm); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tt.data))
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.perm {
				t.Fatalf("perm %v, want %v", fi.Mode().Perm(), tt.perm)
			}
			assertNoTemps(t, filepath.Dir(path))
		})
	}
}

func TestOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	for _, s := range []string{"first, longer content", "second"} {
		if err := WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != s {
			t.Fatalf("got %q, want %q", got, s)
		}
	}
}

func TestReadMissing(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
}

func TestLeftoverTempDoesNotBreakWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "offsets.json")
	if err := WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// What a crash between create and rename leaves behind, including a
	// read-only leftover that could not be truncated in place.
	for _, name := range []string{"offsets.json" + tempInfix + "123", "offsets.json" + tempInfix} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("garbage"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(path, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "new" {
		t.Fatalf("got %q", got)
	}
	if err := RemoveTemps(path); err != nil {
		t.Fatal(err)
	}
	assertNoTemps(t, dir)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("target removed: %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		want error
	}{
		{"empty path", "", ErrEmptyPath},
		{"directory path", dir + string(filepath.Separator), ErrEmptyPath},
		{"missing dir", filepath.Join(dir, "no", "such", "f"), os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFile(tt.path, []byte("x"), 0o644)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRenameFailureLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory at the target name makes rename fail.
	target := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("x"), 0o644); err == nil {
		t.Fatal("expected an error")
	}
	assertNoTemps(t, dir)
}

func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte('a' + i)}, 4096)
			if err := WriteFile(path, data, 0o644); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Whoever won, the content is one writer's, whole.
	if len(got) != 4096 || strings.Count(string(got), string(got[:1])) != 4096 {
		t.Fatalf("mixed content")
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), tempInfix) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
