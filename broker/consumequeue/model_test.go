package consumequeue

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// model is what the queue should contain, kept as plain data.
type model struct {
	min, max int64
	entries  map[int64]Entry
	nextPos  int64
}

// TestRandomOperations applies random operation sequences, including
// restarts, to a queue and a model, and checks they agree after each one.
func TestRandomOperations(t *testing.T) {
	for seed := range seeds(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runRandom(t, rand.New(rand.NewPCG(seed, 7)), 300)
		})
	}
}

func runRandom(t *testing.T, rng *rand.Rand, steps int) {
	dir := t.TempDir()
	q := openTest(t, dir)
	m := &model{entries: map[int64]Entry{}, nextPos: 1}
	for step := range steps {
		op := randomOp(t, rng, q, m)
		if op == "reopen" {
			q.Close()
			q = openTest(t, dir)
			// MinOffset is not persisted: it falls back to the first file.
			if q.MinOffset() > m.min {
				t.Fatalf("step %d: min %d after reopen, was %d", step, q.MinOffset(), m.min)
			}
			m.min = q.MinOffset()
		}
		checkModel(t, q, m, fmt.Sprintf("step %d (%s)", step, op))
	}
}

func randomOp(t *testing.T, rng *rand.Rand, q *Queue, m *model) string {
	t.Helper()
	var err error
	var op string
	switch n := rng.IntN(100); {
	case n < 55:
		op = "append"
		for range 1 + rng.IntN(6) {
			e := Entry{Pos: m.nextPos, Size: int32(1 + rng.IntN(100)), TagHash: rng.Int64()}
			m.nextPos += 1 + rng.Int64N(50)
			if err = q.Append(m.max, e); err != nil {
				break
			}
			m.entries[m.max] = e
			m.max++
		}
	case n < 63:
		op = "truncate-to"
		off := m.min + rng.Int64N(m.max-m.min+2)
		err = q.TruncateTo(off)
		m.truncate(off)
	case n < 71:
		op = "truncate-from-pos"
		pos := rng.Int64N(m.nextPos + 10)
		first := m.max // with no file the queue is empty and nothing changes
		if len(q.segs) > 0 {
			first = q.segs[0].base
		}
		err = q.TruncateFromPos(pos)
		m.truncate(m.firstWithPos(first, pos))
	case n < 82:
		op = "set-min-log-pos"
		pos := rng.Int64N(m.nextPos + 10)
		err = q.SetMinLogPos(pos)
		m.min = max(m.min, m.firstWithPos(m.min, pos))
	case n < 85:
		op = "reset"
		start := m.max + rng.Int64N(10) - 3
		start = max(start, 0)
		err = q.Reset(start)
		m.min, m.max = start, start
	case n < 92:
		op = "flush"
		err = q.Flush()
	default:
		op = "reopen"
	}
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return op
}

// truncate applies TruncateTo(off). Below the first file the queue restarts
// at off, which the same formula covers since off is then below MinOffset.
func (m *model) truncate(off int64) {
	if off >= m.max {
		return
	}
	m.max = off
	m.min = min(m.min, off)
}

func (m *model) firstWithPos(from, pos int64) int64 {
	for off := from; off < m.max; off++ {
		if m.entries[off].Pos >= pos {
			return off
		}
	}
	return m.max
}

func checkModel(t *testing.T, q *Queue, m *model, where string) {
	t.Helper()
	if q.MinOffset() != m.min || q.MaxOffset() != m.max {
		t.Fatalf("%s: bounds [%d, %d), model [%d, %d)", where, q.MinOffset(), q.MaxOffset(), m.min, m.max)
	}
	got, err := q.Range(m.min, int(m.max-m.min), nil)
	if err != nil {
		t.Fatalf("%s: range: %v", where, err)
	}
	for i, e := range got {
		if want := m.entries[m.min+int64(i)]; e != want {
			t.Fatalf("%s: offset %d = %+v, model %+v", where, m.min+int64(i), e, want)
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
