// Package vfs is the narrow filesystem interface that duomq's storage code
// does its I/O through.
//
// Storage packages (the commit log, the consume queues, the index) never
// call the os package directly: they take an FS, so that tests can swap in a
// wrapper that injects I/O errors (see package errorfs) and exercise the
// paths that real disks take only on a bad day — a failed fsync, a short
// write, a disk that refuses to open a file.
//
// The interface is deliberately small. File offers positional reads and
// writes (pread/pwrite) only: there is no shared file offset, so several
// goroutines may read one File concurrently while one writer appends to it.
// SyncDir makes a directory's entries (files created, renamed or removed)
// durable, which fsync of the file alone does not.
//
// Default is the operating system's filesystem.
package vfs
