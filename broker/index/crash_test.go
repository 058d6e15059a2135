package index

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// crashChunk is the granularity at which the simulated power loss keeps or
// loses writes, standing in for pages written back in any order. It is
// smaller than a page to tear entries and slot tables in more places, but
// keeps the header whole, as a disk sector write does.
const crashChunk = headerSize

// crashModel drives an index the way the broker does: positions only grow,
// Flush is the checkpoint, and after a crash everything from the checkpoint
// on is added again.
type crashModel struct {
	t          *testing.T
	dir        string
	opts       Options
	ix         *Index
	adds       []string // key added at position i
	checkpoint int      // positions below it were flushed
	deleted    int64    // DeleteBelow threshold
	flushed    map[string][]byte
	rng        *rand.Rand
}

// TestCrashRecoveryNeverMisses applies random adds, flushes, deletes, clean
// restarts and power losses, and checks that every live position is found
// exactly once.
func TestCrashRecoveryNeverMisses(t *testing.T) {
	for seed := range seeds(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := &crashModel{t: t, dir: t.TempDir(), opts: Options{SlotCount: 3, EntriesPerFile: 9},
				flushed: map[string][]byte{}, rng: rand.New(rand.NewPCG(seed, 11))}
			m.ix = openTest(t, m.dir, m.opts)
			for step := range 200 {
				m.step()
				m.check(step)
			}
		})
	}
}

func (m *crashModel) step() {
	switch n := m.rng.IntN(100); {
	case n < 60:
		for range 1 + m.rng.IntN(5) {
			m.add(len(m.adds), fmt.Sprint("key-", m.rng.IntN(6)))
		}
	case n < 75:
		m.flush()
	case n < 82:
		m.deleted = max(m.deleted, int64(m.rng.IntN(len(m.adds)+1)))
		if err := m.ix.DeleteBelow(m.deleted); err != nil {
			m.t.Fatal(err)
		}
	case n < 88:
		// Close flushes, so the disk holds everything; the broker's
		// checkpoint may still be older.
		m.ix.Close()
		m.snapshotDisk()
		m.reopen()
	default:
		m.powerLoss()
	}
}

func (m *crashModel) add(pos int, key string) {
	if pos == len(m.adds) {
		m.adds = append(m.adds, key)
	}
	mustAdd(m.t, m.ix, key, int64(pos))
}

func (m *crashModel) flush() {
	if err := m.ix.Flush(); err != nil {
		m.t.Fatal(err)
	}
	m.checkpoint = len(m.adds)
	m.snapshotDisk()
}

// snapshotDisk records the files as durable: what a power loss reverts to.
func (m *crashModel) snapshotDisk() {
	m.flushed = map[string][]byte{}
	for _, name := range indexFiles(m.t, m.dir) {
		b, err := os.ReadFile(filepath.Join(m.dir, name))
		if err != nil {
			m.t.Fatal(err)
		}
		m.flushed[name] = b
	}
}

// powerLoss drops the index without flushing and reverts a random subset of
// chunks of every file to their content at the last Flush (or to the empty
// file for files created since), then recovers as the broker does.
func (m *crashModel) powerLoss() {
	m.ix.mu.Lock()
	m.ix.unmapAll()
	m.ix.closed = true
	m.ix.mu.Unlock()
	for _, name := range indexFiles(m.t, m.dir) {
		path := filepath.Join(m.dir, name)
		cur, err := os.ReadFile(path)
		if err != nil {
			m.t.Fatal(err)
		}
		old, ok := m.flushed[name]
		if !ok {
			old = emptyLike(cur)
		}
		for off := 0; off < len(cur); off += crashChunk {
			if m.rng.IntN(2) == 0 {
				copy(cur[off:min(off+crashChunk, len(cur))], old[off:])
			}
		}
		if err := os.WriteFile(path, cur, 0o644); err != nil {
			m.t.Fatal(err)
		}
	}
	m.snapshotDisk() // what survived is now the durable state
	m.reopen()
	for pos := m.checkpoint; pos < len(m.adds); pos++ {
		m.add(pos, m.adds[pos])
	}
}

// emptyLike returns what a freshly created file with cur's geometry holds.
func emptyLike(cur []byte) []byte {
	h, err := decodeHeader(cur, len(cur))
	if err != nil {
		panic(err)
	}
	b := make([]byte, len(cur))
	header{slots: h.slots, capacity: h.capacity}.encode(b)
	return b
}

func (m *crashModel) reopen() {
	ix, err := Open(m.dir, m.opts)
	if err != nil {
		m.t.Fatalf("reopen: %v", err)
	}
	m.t.Cleanup(func() { ix.Close() })
	m.ix = ix
}

func (m *crashModel) check(step int) {
	want := map[string][]int64{}
	for pos := len(m.adds) - 1; pos >= int(m.deleted); pos-- {
		want[m.adds[pos]] = append(want[m.adds[pos]], int64(pos))
	}
	for key, positions := range want {
		got := lookup(m.t, m.ix, key, 10_000)
		for _, p := range positions {
			if !slices.Contains(got, p) {
				m.t.Fatalf("step %d: %s misses %d: got %v", step, key, p, got)
			}
		}
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(got) {
			m.t.Fatalf("step %d: %s has duplicates: %v", step, key, got)
		}
	}
}

// seeds is how many random sequences a randomized test runs: fewer with
// -short, as these tests are bound by fsync latency.
func seeds(n uint64) uint64 {
	if testing.Short() {
		return max(n/5, 1)
	}
	return n
}
