package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tempInfix separates the target name from the random suffix of a temporary
// file; RemoveTemps relies on it.
const tempInfix = ".tmp-"

// WriteFile atomically replaces path with data. After it returns nil the new
// content is durable; after an error path holds its old content (or does not
// exist if it did not before) and no temporary file is left behind.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("%w: %q", ErrEmptyPath, path)
	}
	if dir == "" {
		dir = "."
	}
	tmp, err := writeTemp(dir, base, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: rename: %w", err)
	}
	return SyncDir(dir)
}

// writeTemp writes data to a new temporary file in dir and makes it durable.
// It returns the temporary file's path.
func writeTemp(dir, base string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, base+tempInfix+"*")
	if err != nil {
		return "", fmt.Errorf("atomicfile: create temp: %w", err)
	}
	name := f.Name()
	if err := fillAndSync(f, data, perm); err != nil {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("atomicfile: close temp: %w", err)
	}
	return name, nil
}

func fillAndSync(f *os.File, data []byte, perm os.FileMode) error {
	// CreateTemp uses 0600; the caller's permission must hold before the
	// rename makes the file visible under its real name.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: chmod temp: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write temp: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync temp: %w", err)
	}
	return nil
}

// ReadFile returns the content of path. It is a plain read: WriteFile never
// exposes partial content, so nothing needs checking. A missing file yields
// an error that satisfies errors.Is(err, os.ErrNotExist).
func ReadFile(path string) ([]byte, error) {
	return os.ReadFile(path)
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync dir: %w", err)
	}
	return nil
}

// RemoveTemps deletes temporary files that an interrupted WriteFile of path
// left behind. It must not run concurrently with a WriteFile of the same
// path, whose temporary file it could delete.
func RemoveTemps(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: read dir: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), base+tempInfix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("atomicfile: remove temp: %w", err)
		}
	}
	return nil
}
