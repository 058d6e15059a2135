package errorfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/duomq/duomq/internal/vfs"
)

func openTemp(t *testing.T, fs *FS) vfs.File {
	t.Helper()
	f, err := fs.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestInjectEachFileOp(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		op  Op
		run func(f vfs.File) error
	}{
		{OpWrite, func(f vfs.File) error { _, err := f.WriteAt([]byte("x"), 0); return err }},
		{OpRead, func(f vfs.File) error { _, err := f.ReadAt(make([]byte, 1), 0); return err }},
		{OpSync, func(f vfs.File) error { return f.Sync() }},
		{OpTruncate, func(f vfs.File) error { return f.Truncate(0) }},
		{OpStat, func(f vfs.File) error { _, err := f.Stat(); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.op.String(), func(t *testing.T) {
			fs := Wrap(nil)
			f := openTemp(t, fs)
			if _, err := f.WriteAt([]byte("data"), 0); err != nil {
				t.Fatal(err)
			}
			fs.Inject(tc.op, boom)
			if err := tc.run(f); !errors.Is(err, boom) {
				t.Fatalf("with fault: err = %v, want %v", err, boom)
			}
			fs.Clear()
			if err := tc.run(f); err != nil {
				t.Fatalf("after Clear: err = %v", err)
			}
		})
	}
}

func TestInjectEachFSOp(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		op  Op
		run func(fs *FS) error
	}{
		{OpOpen, func(fs *FS) error {
			f, err := fs.OpenFile(name, os.O_RDONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{OpStat, func(fs *FS) error { _, err := fs.Stat(name); return err }},
		{OpReadDir, func(fs *FS) error { _, err := fs.ReadDir(dir); return err }},
		{OpMkdirAll, func(fs *FS) error { return fs.MkdirAll(filepath.Join(dir, "d"), 0o755) }},
		{OpSyncDir, func(fs *FS) error { return fs.SyncDir(dir) }},
		{OpRename, func(fs *FS) error { return fs.Rename(name, name) }},
	}
	for _, tc := range cases {
		t.Run(tc.op.String(), func(t *testing.T) {
			fs := Wrap(vfs.Default)
			fs.Inject(tc.op, nil)
			if err := tc.run(fs); !errors.Is(err, ErrInjected) {
				t.Fatalf("with fault: err = %v, want ErrInjected", err)
			}
			fs.ClearOp(tc.op)
			if err := tc.run(fs); err != nil {
				t.Fatalf("after ClearOp: err = %v", err)
			}
		})
	}
}

func TestInjectRemoveLeavesFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fs := Wrap(nil)
	fs.Inject(OpRemove, nil)
	if err := fs.Remove(name); !errors.Is(err, ErrInjected) {
		t.Fatalf("Remove err = %v", err)
	}
	if _, err := os.Stat(name); err != nil {
		t.Fatalf("file gone after a failed Remove: %v", err)
	}
}

func TestInjectAfterAndCount(t *testing.T) {
	fs := Wrap(nil)
	f := openTemp(t, fs)
	fs.InjectAfter(OpSync, 2, nil)
	for i := 0; i < 2; i++ {
		if err := f.Sync(); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := f.Sync(); !errors.Is(err, ErrInjected) {
			t.Fatalf("sync after budget: err = %v", err)
		}
	}
	if got := fs.Count(OpSync); got != 4 {
		t.Fatalf("Count(OpSync) = %d, want 4", got)
	}
}

func TestCloseFaultStillCloses(t *testing.T) {
	fs := Wrap(nil)
	f, err := fs.OpenFile(filepath.Join(t.TempDir(), "f"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fs.Inject(OpClose, nil)
	if err := f.Close(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Close err = %v", err)
	}
	fs.Clear()
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
}

func TestOpString(t *testing.T) {
	if OpSync.String() != "sync" || Op(99).String() != "Op(99)" {
		t.Fatalf("unexpected names %q %q", OpSync, Op(99))
	}
}
