// Package atomicfile replaces small files (state, checkpoints, consumer
// offsets) so that a crash at any moment leaves either the old content or
// the new content on disk, never a mix and never an empty file.
//
// WriteFile writes the data to a uniquely named temporary file in the same
// directory, fsyncs it, renames it over the target and fsyncs the
// directory. rename(2) within one directory is atomic on POSIX file
// systems, and the two fsyncs order the data before the name change and
// make the name change itself durable.
//
// Temporary files are named "<base>.tmp-<random>". A crash can leave one
// behind; it never affects readers (they open the target name) and the next
// WriteFile picks a fresh name, so leftovers are harmless. Owners of a
// directory may delete them with RemoveTemps.
//
// Files are meant to be small: WriteFile rewrites the whole file.
package atomicfile
