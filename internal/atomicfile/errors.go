package atomicfile

import "errors"

// ErrEmptyPath is returned when WriteFile is given an empty path or one that
// names a directory ("dir/"), because there is no file to replace.
var ErrEmptyPath = errors.New("atomicfile: empty file name")
