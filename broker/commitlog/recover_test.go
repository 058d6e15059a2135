package commitlog

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func TestRecoverTornTail(t *testing.T) {
	cases := []struct {
		name string
		// damage edits the only segment file; last is the offset of the
		// last record in it and end the file's intact size.
		damage func(b []byte, last, end int) []byte
		// lost is how many of the appended records recovery must drop.
		lost int
	}{
		{"truncated mid-record", func(b []byte, last, end int) []byte { return b[:last+20] }, 1},
		{"truncated mid-header", func(b []byte, last, end int) []byte { return b[:last+3] }, 1},
		{"garbage appended", func(b []byte, last, end int) []byte {
			return append(b, []byte("\x30\x00\x00\x00not a record, just noise from a torn write")...)
		}, 0},
		{"zeros appended", func(b []byte, last, end int) []byte { return append(b, make([]byte, 4096)...) }, 0},
		{"byte flipped in last record", func(b []byte, last, end int) []byte { b[end-3] ^= 0x10; return b }, 1},
		{"length of last record huge", func(b []byte, last, end int) []byte {
			le.PutUint32(b[last:], 1<<25)
			return b
		}, 1},
		{"length of last record tiny", func(b []byte, last, end int) []byte {
			le.PutUint32(b[last:], 3)
			return b
		}, 1},
		{"half a record appended", func(b []byte, last, end int) []byte {
			return append(b, testRec(99)[:60]...)
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOpts(t)
			l := openLog(t, opts)
			pos, _ := appendRange(t, l, 0, 10)
			end := l.WrittenPos()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			patchFile(t, segPath(opts.Dir, 0), func(b []byte) []byte {
				return tc.damage(b, int(pos[9]), int(end))
			})

			l = openLog(t, opts)
			kept := 10 - tc.lost
			wantEnd := end
			if tc.lost > 0 {
				wantEnd = pos[kept]
			}
			if l.WrittenPos() != wantEnd {
				t.Fatalf("WrittenPos %d, want %d", l.WrittenPos(), wantEnd)
			}
			if fi, err := os.Stat(segPath(opts.Dir, 0)); err != nil || fi.Size() != wantEnd {
				t.Fatalf("segment file size %v (%v), want %d", fi.Size(), err, wantEnd)
			}
			if got := l.Metrics().TruncatedTails; got != 1 {
				t.Fatalf("TruncatedTails = %d, want 1", got)
			}
			appendRange(t, l, kept, 15)
			wantOffsets(t, scanAll(t, l), 0, 15)
			l = reopen(t, l, opts)
			wantOffsets(t, scanAll(t, l), 0, 15)
		})
	}
}

// multiSegmentLog writes n records into 1 KiB segments and closes the log.
func multiSegmentLog(t *testing.T, n int) (Options, []int64) {
	t.Helper()
	opts := testOpts(t)
	opts.SegmentSize = MinSegmentSize
	l := openLog(t, opts)
	pos, _ := appendRange(t, l, 0, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return opts, pos
}

// firstIndexAtOrAfter returns the index of the first position >= base.
func firstIndexAtOrAfter(pos []int64, base int64) int {
	for i, p := range pos {
		if p >= base {
			return i
		}
	}
	return len(pos)
}

func TestRecoverTornMiddleSegmentDropsLaterOnes(t *testing.T) {
	opts, pos := multiSegmentLog(t, 60)
	bases := segFiles(t, opts.Dir)
	if len(bases) < 4 {
		t.Fatalf("only %d segments", len(bases))
	}
	// Lose the end of the second-to-last segment, marker included, as an
	// OS crash can when the next segment's data reached the disk first.
	victim := bases[len(bases)-2]
	lastRec := firstIndexAtOrAfter(pos, bases[len(bases)-1]) - 1
	if err := os.Truncate(segPath(opts.Dir, victim), pos[lastRec]+10-victim); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, opts) // RecoverFrom 0: every segment is checked
	if l.WrittenPos() != pos[lastRec] {
		t.Fatalf("WrittenPos %d, want %d", l.WrittenPos(), pos[lastRec])
	}
	if got := segFiles(t, opts.Dir); len(got) != len(bases)-1 {
		t.Fatalf("segments after recovery %v, want the last one deleted from %v", got, bases)
	}
	wantOffsets(t, scanAll(t, l), 0, lastRec)
	appendRange(t, l, lastRec, 80)
	wantOffsets(t, scanAll(t, l), 0, 80)
}

func TestRecoverEmptyTrailingSegment(t *testing.T) {
	opts, pos := multiSegmentLog(t, 30)
	bases := segFiles(t, opts.Dir)
	last := bases[len(bases)-1]
	// A crash right after a roll: the last segment exists but is empty
	// (its records never reached the disk).
	if err := os.Truncate(segPath(opts.Dir, last), 0); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, opts)
	kept := firstIndexAtOrAfter(pos, last)
	// Nothing is cut: the empty file is simply the segment written next.
	if l.WrittenPos() != last || l.Metrics().TruncatedTails != 0 {
		t.Fatalf("WrittenPos %d (want %d), metrics %+v", l.WrittenPos(), last, l.Metrics())
	}
	wantOffsets(t, scanAll(t, l), 0, kept)
	appendRange(t, l, kept, 40)
	wantOffsets(t, scanAll(t, l), 0, 40)
}

func TestRecoverSealedLastSegment(t *testing.T) {
	opts, pos := multiSegmentLog(t, 30)
	bases := segFiles(t, opts.Dir)
	last := bases[len(bases)-1]
	// A crash between writing the end marker and creating the next file.
	if err := os.Remove(segPath(opts.Dir, last)); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, opts)
	kept := firstIndexAtOrAfter(pos, last)
	if l.WrittenPos() != last {
		t.Fatalf("WrittenPos %d, want %d", l.WrittenPos(), last)
	}
	if got := segFiles(t, opts.Dir); got[len(got)-1] != last {
		t.Fatalf("segments %v: no new segment at %d", got, last)
	}
	appendRange(t, l, kept, 40)
	wantOffsets(t, scanAll(t, l), 0, 40)
}

func TestRecoverDropsDiscontiguousSegment(t *testing.T) {
	opts, pos := multiSegmentLog(t, 30)
	bases := segFiles(t, opts.Dir)
	last := bases[len(bases)-1]
	// A stray segment whose base does not continue the log.
	if err := os.WriteFile(segPath(opts.Dir, last+5000), testRec(77), 0o644); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, opts)
	if got := segFiles(t, opts.Dir); len(got) != len(bases) {
		t.Fatalf("segments %v, want the stray one deleted", got)
	}
	wantOffsets(t, scanAll(t, l), 0, len(pos))
}

func TestRecoverFromCheckpoint(t *testing.T) {
	opts, pos := multiSegmentLog(t, 60)
	bases := segFiles(t, opts.Dir)
	// Damage a record in the first segment: a checkpoint past it means it
	// is trusted at open, and the damage is found only when it is read.
	flipByte(t, segPath(opts.Dir, 0), pos[1]+30)
	cases := []struct {
		name string
		from int64
	}{
		{"segment base", bases[1]},
		{"record boundary", pos[firstIndexAtOrAfter(pos, bases[1])+1]},
		{"not a boundary", pos[firstIndexAtOrAfter(pos, bases[1])+1] + 7},
		{"beyond the end", 1 << 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			o.RecoverFrom = tc.from
			l := openLog(t, o)
			if l.WrittenPos() != pos[59]+int64(len(testRec(59))) {
				t.Fatalf("WrittenPos %d: recovery cut acknowledged data", l.WrittenPos())
			}
			if _, err := l.ReadMessage(pos[1], len(testRec(1))); !errors.Is(err, ErrCorruption) {
				t.Fatalf("ReadMessage of the damaged record: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRecoverRefusesGapInTrustedSegments(t *testing.T) {
	opts, _ := multiSegmentLog(t, 60)
	bases := segFiles(t, opts.Dir)
	if err := os.Remove(segPath(opts.Dir, bases[1])); err != nil {
		t.Fatal(err)
	}
	opts.RecoverFrom = bases[len(bases)-1]
	if _, err := Open(opts); !errors.Is(err, ErrCorruption) {
		t.Fatalf("Open with a hole in the trusted segments: %v, want ErrCorruption", err)
	}
}

func TestRecoverIgnoresForeignFiles(t *testing.T) {
	opts := testOpts(t)
	for _, name := range []string{"README", "0000000000000000000x", "checkpoint.json"} {
		if err := os.WriteFile(opts.Dir+"/"+name, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := openLog(t, opts)
	appendRange(t, l, 0, 3)
	l = reopen(t, l, opts)
	wantOffsets(t, scanAll(t, l), 0, 3)
}

func TestRecoverWholeSegmentOfGarbage(t *testing.T) {
	opts := testOpts(t)
	if err := os.WriteFile(segPath(opts.Dir, 0), bytes.Repeat([]byte{0xAB}, 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, opts)
	if l.WrittenPos() != 0 || l.Metrics().TruncatedTails != 1 {
		t.Fatalf("WrittenPos %d metrics %+v", l.WrittenPos(), l.Metrics())
	}
	appendRange(t, l, 0, 5)
	wantOffsets(t, scanAll(t, l), 0, 5)
}
