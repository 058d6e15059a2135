package consumequeue

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentReadersAndWriter runs one writer (appending and applying
// retention), a flusher and several readers. Readers must only ever see the
// entry that was written at an offset, or ErrOutOfRange for an offset that
// retention removed meanwhile.
func TestConcurrentReadersAndWriter(t *testing.T) {
	q := openTest(t, t.TempDir())
	const total = 3000
	var done atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readUntilDone(t, q, &done, uint64(r))
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			if err := q.Flush(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for off := int64(0); off < total; off++ {
		if err := q.Append(off, entryFor(off)); err != nil {
			t.Fatal(err)
		}
		if off%50 == 49 {
			if err := q.SetMinLogPos(entryFor(off - 20).Pos); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
}

func readUntilDone(t *testing.T, q *Queue, done *atomic.Bool, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var buf []Entry
	for !done.Load() {
		lo, hi := q.MinOffset(), q.MaxOffset()
		if hi == lo {
			continue
		}
		off := lo + rng.Int64N(hi-lo)
		if e, err := q.Get(off); !expected(q, off, e, err) {
			t.Errorf("get %d: %+v, %v", off, e, err)
			return
		}
		var err error
		buf, err = q.Range(off, 8, buf[:0])
		for i, e := range buf {
			if e != entryFor(off+int64(i)) {
				t.Errorf("range %d: entry %d = %+v", off, i, e)
				return
			}
		}
		if err != nil && !(errors.Is(err, ErrOutOfRange) && off < q.MinOffset()) {
			t.Errorf("range %d: %v", off, err)
			return
		}
		target := entryFor(off).Pos
		got, err := q.Search(func(e Entry) (bool, error) { return e.Pos >= target, nil })
		// Unless retention passed off meanwhile, the search must land on it.
		if (err != nil || got != off) && off >= q.MinOffset() {
			t.Errorf("search for %d: %d, %v", off, got, err)
			return
		}
	}
}

func expected(q *Queue, off int64, e Entry, err error) bool {
	if err == nil {
		return e == entryFor(off)
	}
	return errors.Is(err, ErrOutOfRange) && off < q.MinOffset()
}
