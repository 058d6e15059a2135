// Package mmapfile creates and maps the fixed-size files of the storage
// engine's consume queues and index.
//
// A file appears under its real name only complete and synced (written as
// name+TmpSuffix, fsynced, renamed, directory fsynced), so a crash never
// leaves a short file behind; leftovers with TmpSuffix are the owner's to
// delete when it opens its directory. A mapping outlives the file
// descriptor, which is closed at once, so the number of open files does not
// grow with the number of mapped files.
package mmapfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/duomq/duomq/internal/atomicfile"
)

// TmpSuffix marks a file still being created.
const TmpSuffix = ".tmp"

// Create makes path a zero-filled file of size bytes that starts with
// head (may be nil), durably, and maps it shared read-write.
func Create(path string, size int, head []byte) ([]byte, error) {
	tmp := path + TmpSuffix
	if err := writeFile(tmp, size, head); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := atomicfile.SyncDir(dirOf(path)); err != nil {
		return nil, err
	}
	return Map(path, func(n int64) error {
		if n != int64(size) {
			return fmt.Errorf("%s is %d bytes after creation, want %d", path, n, size)
		}
		return nil
	})
}

func writeFile(path string, size int, head []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(head)
	if err == nil {
		err = f.Truncate(int64(size))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Map maps an existing file shared read-write after check accepts its
// size (check's error is returned as is).
func Map(path string, check func(size int64) error) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := check(fi.Size()); err != nil {
		return nil, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return data, nil
}

// Unmap releases a mapping made by Create or Map.
func Unmap(data []byte) error { return unix.Munmap(data) }

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}
