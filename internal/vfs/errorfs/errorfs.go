package errorfs

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/duomq/duomq/internal/vfs"
)

// ErrInjected is the error injected when Inject is given a nil error.
var ErrInjected = errors.New("errorfs: injected error")

// Op is a kind of filesystem operation.
type Op int

// The operation kinds faults can be injected into.
const (
	OpOpen     Op = iota // FS.OpenFile
	OpRead               // File.ReadAt
	OpWrite              // File.WriteAt
	OpSync               // File.Sync
	OpTruncate           // File.Truncate
	OpClose              // File.Close
	OpStat               // FS.Stat and File.Stat
	OpRemove             // FS.Remove
	OpRename             // FS.Rename
	OpReadDir            // FS.ReadDir
	OpMkdirAll           // FS.MkdirAll
	OpSyncDir            // FS.SyncDir
	numOps
)

var opNames = [numOps]string{"open", "read", "write", "sync", "truncate", "close",
	"stat", "remove", "rename", "readdir", "mkdirall", "syncdir"}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return fmt.Sprintf("Op(%d)", int(o))
	}
	return opNames[o]
}

// rule is the fault armed for one kind of operation.
type rule struct {
	err  error
	skip int // operations still allowed to pass before err is returned
}

// FS is a vfs.FS that fails the operations it is told to.
type FS struct {
	inner  vfs.FS
	mu     sync.Mutex
	rules  [numOps]*rule
	counts [numOps]atomic.Uint64
}

var _ vfs.FS = (*FS)(nil)

// Wrap returns an FS passing every operation to inner (vfs.Default if nil)
// until told to fail some.
func Wrap(inner vfs.FS) *FS {
	if inner == nil {
		inner = vfs.Default
	}
	return &FS{inner: inner}
}

// Inject makes every later operation of kind op fail with err
// (ErrInjected if err is nil), until Clear or ClearOp.
func (fs *FS) Inject(op Op, err error) { fs.InjectAfter(op, 0, err) }

// InjectAfter lets the next n operations of kind op succeed, then fails
// every later one with err (ErrInjected if err is nil).
func (fs *FS) InjectAfter(op Op, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	fs.mu.Lock()
	fs.rules[op] = &rule{err: err, skip: n}
	fs.mu.Unlock()
}

// ClearOp removes the fault armed for op.
func (fs *FS) ClearOp(op Op) {
	fs.mu.Lock()
	fs.rules[op] = nil
	fs.mu.Unlock()
}

// Clear removes every armed fault.
func (fs *FS) Clear() {
	fs.mu.Lock()
	fs.rules = [numOps]*rule{}
	fs.mu.Unlock()
}

// Count is the number of operations of kind op attempted so far, failed or not.
func (fs *FS) Count(op Op) uint64 { return fs.counts[op].Load() }

// check counts one operation of kind op and returns the error to fail it
// with, or nil to let it through.
func (fs *FS) check(op Op, name string) error {
	fs.counts[op].Add(1)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r := fs.rules[op]
	if r == nil {
		return nil
	}
	if r.skip > 0 {
		r.skip--
		return nil
	}
	return &os.PathError{Op: op.String(), Path: name, Err: r.err}
}

// OpenFile implements vfs.FS.
func (fs *FS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	if err := fs.check(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := fs.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &file{fs: fs, f: f}, nil
}

// Remove implements vfs.FS.
func (fs *FS) Remove(name string) error {
	if err := fs.check(OpRemove, name); err != nil {
		return err
	}
	return fs.inner.Remove(name)
}

// Rename implements vfs.FS.
func (fs *FS) Rename(oldpath, newpath string) error {
	if err := fs.check(OpRename, oldpath); err != nil {
		return err
	}
	return fs.inner.Rename(oldpath, newpath)
}

// ReadDir implements vfs.FS.
func (fs *FS) ReadDir(dir string) ([]os.DirEntry, error) {
	if err := fs.check(OpReadDir, dir); err != nil {
		return nil, err
	}
	return fs.inner.ReadDir(dir)
}

// MkdirAll implements vfs.FS.
func (fs *FS) MkdirAll(dir string, perm os.FileMode) error {
	if err := fs.check(OpMkdirAll, dir); err != nil {
		return err
	}
	return fs.inner.MkdirAll(dir, perm)
}

// Stat implements vfs.FS.
func (fs *FS) Stat(name string) (os.FileInfo, error) {
	if err := fs.check(OpStat, name); err != nil {
		return nil, err
	}
	return fs.inner.Stat(name)
}

// SyncDir implements vfs.FS.
func (fs *FS) SyncDir(dir string) error {
	if err := fs.check(OpSyncDir, dir); err != nil {
		return err
	}
	return fs.inner.SyncDir(dir)
}

// file routes each operation on an open file through its FS's rules.
type file struct {
	fs *FS
	f  vfs.File
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpRead, f.f.Name()); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpWrite, f.f.Name()); err != nil {
		return 0, err
	}
	return f.f.WriteAt(p, off)
}

func (f *file) Sync() error {
	if err := f.fs.check(OpSync, f.f.Name()); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *file) Truncate(size int64) error {
	if err := f.fs.check(OpTruncate, f.f.Name()); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

// Close always closes the underlying file, even when a fault is injected,
// so that tests of close errors do not leak descriptors.
func (f *file) Close() error {
	injected := f.fs.check(OpClose, f.f.Name())
	err := f.f.Close()
	if injected != nil {
		return injected
	}
	return err
}

func (f *file) Stat() (os.FileInfo, error) {
	if err := f.fs.check(OpStat, f.f.Name()); err != nil {
		return nil, err
	}
	return f.f.Stat()
}

func (f *file) Name() string { return f.f.Name() }
