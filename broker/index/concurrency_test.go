package index

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentLookups runs one writer (adding, with rollovers and
// retention), a flusher and several readers. A reader must find every
// position added before its lookup started that retention has not passed.
func TestConcurrentLookups(t *testing.T) {
	ix := openTest(t, t.TempDir(), Options{SlotCount: 8, EntriesPerFile: 64})
	const keys, total = 10, 3000
	var added, deletedBelow atomic.Int64 // positions [deletedBelow, added) are live
	var done atomic.Bool
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			for !done.Load() {
				k := rng.IntN(keys)
				hi := added.Load()
				got, err := ix.Lookup(fmt.Sprint("key-", k), total)
				if err != nil {
					t.Error(err)
					return
				}
				// Read after the lookup: it then covers every delete that
				// ran during it.
				lo := max(deletedBelow.Load(), 0)
				for p := hi - 1; p >= lo; p-- {
					if p%keys == int64(k) && !slices.Contains(got, p) {
						t.Errorf("key-%d: missing %d in [%d, %d)", k, p, lo, hi)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			if err := ix.Flush(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for p := range int64(total) {
		mustAdd(t, ix, fmt.Sprint("key-", p%keys), p)
		added.Store(p + 1)
		if p%100 == 99 {
			deletedBelow.Store(p - 500)
			if err := ix.DeleteBelow(p - 500); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
}
