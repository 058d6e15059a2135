// Package errorfs wraps a vfs.FS and makes chosen kinds of operation fail,
// for tests of the error paths of storage code.
//
// Faults are switched on and off while the code under test runs:
//
//	fs := errorfs.Wrap(vfs.Default)
//	log, _ := commitlog.Open(commitlog.Options{Dir: dir, FS: fs})
//	fs.Inject(errorfs.OpSync, errorfs.ErrInjected) // every fsync fails from now on
//	...
//	fs.Clear()
//
// InjectAfter lets a number of operations of a kind succeed first, which
// places a fault at an exact step of a multi-step procedure (the third
// write of a batch, the second fsync after a roll). Count reports how many
// operations of each kind were attempted, which is also how a test asserts
// that something was (or was not) fsynced.
//
// Injection applies to files opened through the wrapper before and after
// the call alike. A failed operation has no effect on the underlying file.
package errorfs
