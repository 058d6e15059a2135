package consumequeue

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// crashChunk is the granularity at which the simulated power loss keeps or
// loses writes, standing in for pages written back in any order. It does
// not divide EntrySize, so slots get torn.
const crashChunk = 16

// crashPerFile keeps file creation (two fsyncs each) from dominating the
// test's run time while still crossing many file boundaries.
const crashPerFile = 16

// TestCrashRecovery drives a queue the way the broker does (Flush is the
// checkpoint; after a crash it truncates to the checkpoint's position and
// re-dispatches from there) through random power losses, and checks that
// the recovered queue holds exactly the entries written.
func TestCrashRecovery(t *testing.T) {
	for seed := range seeds(25) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			c := &crashQueue{t: t, dir: t.TempDir(), rng: rand.New(rand.NewPCG(seed, 5))}
			c.open()
			for step := range 150 {
				c.step()
				checkCrashModel(t, c, step)
			}
		})
	}
}

type crashQueue struct {
	t          *testing.T
	dir        string
	q          *Queue
	rng        *rand.Rand
	written    []Entry // entry at offset i
	checkpoint int     // offsets below it were flushed
	flushed    map[string][]byte
}

func (c *crashQueue) step() {
	switch n := c.rng.IntN(100); {
	case n < 70:
		for range 1 + c.rng.IntN(7) {
			off := int64(len(c.written))
			e := Entry{Pos: 10 + off*10, Size: int32(1 + c.rng.IntN(9)), TagHash: c.rng.Int64()}
			if err := c.q.Append(off, e); err != nil {
				c.t.Fatal(err)
			}
			c.written = append(c.written, e)
		}
	case n < 85:
		if err := c.q.Flush(); err != nil {
			c.t.Fatal(err)
		}
		c.checkpoint = len(c.written)
		c.snapshotDisk()
	default:
		c.powerLoss()
	}
}

func (c *crashQueue) snapshotDisk() {
	c.flushed = map[string][]byte{}
	for _, name := range segmentFiles(c.t, c.dir) {
		b, err := os.ReadFile(filepath.Join(c.dir, name))
		if err != nil {
			c.t.Fatal(err)
		}
		c.flushed[name] = b
	}
}

func (c *crashQueue) powerLoss() {
	c.q.mu.Lock()
	c.q.unmapAll()
	c.q.closed = true
	c.q.mu.Unlock()
	for _, name := range segmentFiles(c.t, c.dir) {
		path := filepath.Join(c.dir, name)
		cur, err := os.ReadFile(path)
		if err != nil {
			c.t.Fatal(err)
		}
		old, ok := c.flushed[name]
		if !ok {
			old = make([]byte, len(cur)) // created since: zero-filled on disk
		}
		for off := 0; off < len(cur); off += crashChunk {
			if c.rng.IntN(2) == 0 {
				copy(cur[off:min(off+crashChunk, len(cur))], old[off:])
			}
		}
		if err := os.WriteFile(path, cur, 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	c.snapshotDisk() // what survived is now the durable state
	c.recoverAsBroker()
}

func (c *crashQueue) open() {
	q, err := Open(c.dir, Options{EntriesPerFile: crashPerFile})
	if err != nil {
		c.t.Fatalf("open: %v", err)
	}
	c.t.Cleanup(func() { q.Close() })
	c.q = q
}

func (c *crashQueue) recoverAsBroker() {
	c.open()
	q := c.q
	pos := int64(1 << 62)
	if c.checkpoint < len(c.written) {
		pos = c.written[c.checkpoint].Pos
	}
	if err := q.TruncateFromPos(pos); err != nil {
		c.t.Fatalf("truncate from %d: %v", pos, err)
	}
	c.snapshotDisk() // truncation syncs what it changes
	for off := c.checkpoint; off < len(c.written); off++ {
		c.redispatch(int64(off), c.written[off])
	}
}

// redispatch is what the broker's dispatcher must do after a crash: an
// entry below MaxOffset is kept only if it is the one being dispatched,
// because an unflushed slot may be torn in a way no scan can see.
func (c *crashQueue) redispatch(off int64, want Entry) {
	if off < c.q.MaxOffset() {
		if got, err := c.q.Get(off); err == nil && got == want {
			return
		}
		if err := c.q.TruncateTo(off); err != nil {
			c.t.Fatalf("truncate to %d: %v", off, err)
		}
	}
	if err := c.q.Append(off, want); err != nil {
		c.t.Fatalf("re-dispatch %d: %v", off, err)
	}
}

func checkCrashModel(t *testing.T, c *crashQueue, step int) {
	t.Helper()
	if c.q.MinOffset() != 0 || c.q.MaxOffset() != int64(len(c.written)) {
		t.Fatalf("step %d: bounds [%d, %d), want [0, %d)", step, c.q.MinOffset(), c.q.MaxOffset(), len(c.written))
	}
	got, err := c.q.Range(0, len(c.written), nil)
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	for i, e := range got {
		if e != c.written[i] {
			t.Fatalf("step %d: offset %d = %+v, want %+v", step, i, e, c.written[i])
		}
	}
}
