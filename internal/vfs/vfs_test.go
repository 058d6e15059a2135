package vfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Default.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "f")
	f, err := Default.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello world"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := f.ReadAt(buf, 9); err != nil {
		t.Fatal(err)
	}
	if string(buf) != "world" {
		t.Fatalf("read %q, want %q", buf, "world")
	}
	if err := f.Truncate(8); err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 8 {
		t.Fatalf("stat after truncate: %v, %v", fi, err)
	}
	if f.Name() != name {
		t.Fatalf("Name() = %q, want %q", f.Name(), name)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Default.Rename(name, name+"2"); err != nil {
		t.Fatal(err)
	}
	if err := Default.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	ents, err := Default.ReadDir(dir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "f2" {
		t.Fatalf("ReadDir = %v, %v", ents, err)
	}
	if _, err := Default.Stat(name + "2"); err != nil {
		t.Fatal(err)
	}
	if err := Default.Remove(name + "2"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMissingReturnsNilFile(t *testing.T) {
	f, err := Default.OpenFile(filepath.Join(t.TempDir(), "missing"), os.O_RDONLY, 0)
	if err == nil || f != nil {
		t.Fatalf("OpenFile(missing) = %v, %v; want nil file and an error", f, err)
	}
}

func TestSyncDirMissing(t *testing.T) {
	if err := Default.SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
}
