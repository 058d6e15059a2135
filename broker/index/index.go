package index

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/duomq/duomq/internal/atomicfile"
)

// Index is the message id and key index of one broker. See the package
// documentation for the concurrency contract.
type Index struct {
	dir  string
	opts Options

	flushMu sync.Mutex   // serialises Flush
	wmu     sync.Mutex   // serialises writers; guards the files' hdr and dirty
	mu      sync.RWMutex // guards files and closed; shared while walking mappings

	files  []*file // creation order; the last one takes new entries
	closed bool

	lastPos atomic.Int64
}

// Open opens (creating if needed) the index stored in dir.
func Open(dir string, opts Options) (*Index, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	ix := &Index{dir: dir, opts: opts.withDefaults()}
	ix.lastPos.Store(-1)
	if err := ix.load(); err != nil {
		ix.unmapAll()
		return nil, err
	}
	return ix, nil
}

func (ix *Index) load() error {
	names, err := ix.listFiles()
	if err != nil {
		return err
	}
	for _, name := range names {
		f, err := openFile(filepath.Join(ix.dir, fileName(name)), name)
		if err != nil {
			return err
		}
		ix.files = append(ix.files, f)
		if f.needsRebuild() {
			f.rebuild()
		}
		if f.hdr.count > 0 {
			ix.lastPos.Store(max(ix.lastPos.Load(), f.hdr.endPos))
		}
	}
	return nil
}

// listFiles returns the names of the index files in ascending order and
// deletes files left half-created by a crash.
func (ix *Index) listFiles() ([]int64, error) {
	des, err := os.ReadDir(ix.dir)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	var names []int64
	for _, de := range des {
		if strings.HasSuffix(de.Name(), tmpSuffix) {
			if err := os.Remove(filepath.Join(ix.dir, de.Name())); err != nil {
				return nil, fmt.Errorf("index: remove leftover: %w", err)
			}
			continue
		}
		if n, ok := parseFileName(de.Name()); ok && de.Type().IsRegular() {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Add indexes key at commitlog position pos. Adding the same key and
// position again is harmless: Lookup deduplicates.
func (ix *Index) Add(key string, pos int64, storeTime int64) error {
	if pos < 0 {
		return fmt.Errorf("%w: negative position %d", ErrInvalidArgument, pos)
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	f, err := ix.writableFile(pos)
	if err != nil {
		return err
	}
	f.add(keyHash(key), pos, storeTime)
	if pos > ix.lastPos.Load() {
		ix.lastPos.Store(pos)
	}
	return nil
}

// writableFile returns the file that takes the next entry, starting a new
// one when the last is full. Caller holds wmu.
func (ix *Index) writableFile(pos int64) (*file, error) {
	name := pos
	if n := len(ix.files); n > 0 {
		last := ix.files[n-1]
		if !last.full() {
			return last, nil
		}
		name = max(pos, last.name+1)
	}
	f, err := createFile(ix.dir, name, ix.opts)
	if err != nil {
		return nil, err
	}
	ix.mu.Lock()
	ix.files = append(ix.files, f)
	ix.mu.Unlock()
	return f, nil
}

// Lookup returns up to max distinct candidate positions for key, most
// recently added first. Candidates may belong to other keys with the same
// 32-bit hash; the caller checks the record. max <= 0 returns nothing.
func (ix *Index) Lookup(key string, max int) ([]int64, error) {
	if max <= 0 {
		return nil, nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return nil, ErrClosed
	}
	h := keyHash(key)
	var out []int64
	seen := make(map[int64]struct{})
	collect := func(pos int64) bool {
		if _, dup := seen[pos]; !dup {
			seen[pos] = struct{}{}
			out = append(out, pos)
		}
		return len(out) < max
	}
	for i := len(ix.files) - 1; i >= 0 && len(out) < max; i-- {
		ix.files[i].lookup(h, collect)
	}
	return out, nil
}

// LastPos returns the highest position added, or -1 if the index is empty.
// After a restart it covers what the last Flush made durable.
func (ix *Index) LastPos() int64 { return ix.lastPos.Load() }

// DeleteBelow deletes every file whose positions are all below pos, except
// the file being written. Retention calls it with the commitlog's minimum
// position.
func (ix *Index) DeleteBelow(pos int64) error {
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	if ix.closed {
		return ErrClosed
	}
	ix.mu.Lock()
	var drop []*file
	keep := ix.files[:0:0]
	for i, f := range ix.files {
		if i < len(ix.files)-1 && (f.hdr.count == 0 || f.hdr.endPos < pos) {
			drop = append(drop, f)
		} else {
			keep = append(keep, f)
		}
	}
	ix.files = keep
	var errs []error
	for _, f := range drop {
		errs = append(errs, f.unmap())
	}
	ix.mu.Unlock()
	for _, f := range drop {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("index: %w", err))
		}
	}
	if len(drop) > 0 {
		errs = append(errs, atomicfile.SyncDir(ix.dir))
	}
	return errors.Join(errs...)
}

// Flush makes every entry added so far durable, together with the headers
// that describe them. It may run concurrently with Add and Lookup.
func (ix *Index) Flush() error {
	ix.flushMu.Lock()
	defer ix.flushMu.Unlock()
	files, snaps, err := ix.dirtyFiles()
	if err != nil {
		return err
	}
	ix.mu.RLock()
	var errs []error
	for i, f := range files {
		if f.data == nil {
			continue // deleted meanwhile
		}
		errs = append(errs, f.flushBody(snaps[i]))
	}
	ix.mu.RUnlock()
	if err := errors.Join(errs...); err != nil {
		ix.markDirty(files)
		return err
	}
	return nil
}

// dirtyFiles returns the files written since the last Flush with a snapshot
// of their headers, and marks them clean.
func (ix *Index) dirtyFiles() ([]*file, []header, error) {
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	if ix.closed {
		return nil, nil, ErrClosed
	}
	var files []*file
	var snaps []header
	for _, f := range ix.files {
		if f.dirty {
			files = append(files, f)
			snaps = append(snaps, f.hdr)
			f.dirty = false
		}
	}
	return files, snaps, nil
}

// markDirty makes the next Flush retry files whose flush failed.
func (ix *Index) markDirty(files []*file) {
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	for _, f := range files {
		f.dirty = true
	}
}

// Close flushes the index and releases its mappings. It is safe to call
// more than once.
func (ix *Index) Close() error {
	err := ix.Flush()
	if errors.Is(err, ErrClosed) {
		return nil
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	return errors.Join(err, ix.unmapAll())
}

func (ix *Index) unmapAll() error {
	var errs []error
	for _, f := range ix.files {
		errs = append(errs, f.unmap())
	}
	ix.files = nil
	return errors.Join(errs...)
}
