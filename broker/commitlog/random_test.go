package commitlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// modelRec is what the model remembers of one appended record.
type modelRec struct {
	pos  int64
	size int32
	id   int64
}

// randomRun drives a log through random operations and checks it against a
// model after each: the records the model holds are exactly the ones the
// log returns, in order, at the positions Append reported.
type randomRun struct {
	t      *testing.T
	rng    *rand.Rand
	opts   Options
	l      *Log
	recs   []modelRec
	nextID int64
}

func TestRandomOperations(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			opts := testOpts(t)
			opts.SegmentSize = 2048
			r := &randomRun{t: t, rng: rand.New(rand.NewPCG(seed, 99)), opts: opts}
			r.l = openLog(t, opts)
			for step := 0; step < 300; step++ {
				r.step()
				r.check()
			}
		})
	}
}

func (r *randomRun) step() {
	switch n := r.rng.IntN(100); {
	case n < 55:
		r.appendBatch()
	case n < 65:
		r.truncate()
	case n < 75:
		r.reopen(false)
	case n < 80:
		r.reopen(true)
	case n < 88:
		r.retain()
	default:
		r.readOne()
	}
}

func (r *randomRun) record(id int64) []byte {
	m := testMsg(int(id))
	m.QueueOffset = id
	m.Body = bytes.Repeat([]byte{byte(id)}, r.rng.IntN(700))
	return AppendRecord(nil, m)
}

func (r *randomRun) appendBatch() {
	batch := make([][]byte, 1+r.rng.IntN(6))
	for i := range batch {
		batch[i] = r.record(r.nextID + int64(i))
	}
	res, err := r.l.Append(batch)
	if err != nil {
		r.t.Fatalf("Append: %v", err)
	}
	for i := range batch {
		if n := len(r.recs); n > 0 && res.Positions[i] < r.recs[n-1].pos+int64(r.recs[n-1].size) {
			r.t.Fatalf("position %d overlaps the previous record", res.Positions[i])
		}
		r.recs = append(r.recs, modelRec{res.Positions[i], res.Sizes[i], r.nextID})
		r.nextID++
	}
}

func (r *randomRun) truncate() {
	if len(r.recs) == 0 {
		return
	}
	i := r.rng.IntN(len(r.recs))
	if err := r.l.Truncate(r.recs[i].pos); err != nil {
		r.t.Fatalf("Truncate(%d): %v", r.recs[i].pos, err)
	}
	r.recs = r.recs[:i]
}

// reopen closes and reopens the log, sometimes tearing the last segment's
// tail in between as a crash would; the model then loses a suffix.
func (r *randomRun) reopen(tear bool) {
	if err := r.l.Close(); err != nil {
		r.t.Fatal(err)
	}
	if tear {
		bases := segFiles(r.t, r.opts.Dir)
		path := segPath(r.opts.Dir, bases[len(bases)-1])
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			os.Truncate(path, r.rng.Int64N(fi.Size()))
		}
	}
	o := r.opts
	if len(r.recs) > 0 && r.rng.IntN(2) == 0 {
		o.RecoverFrom = r.recs[r.rng.IntN(len(r.recs))].pos
	}
	l, err := Open(o)
	if err != nil {
		r.t.Fatalf("Open: %v", err)
	}
	r.t.Cleanup(func() { l.Close() })
	r.l = l
	for len(r.recs) > 0 && r.recs[len(r.recs)-1].pos+int64(r.recs[len(r.recs)-1].size) > l.WrittenPos() {
		r.recs = r.recs[:len(r.recs)-1]
	}
}

func (r *randomRun) retain() {
	if _, err := r.l.Retain(0, 1+r.rng.Int64N(8000), time.Now()); err != nil {
		r.t.Fatalf("Retain: %v", err)
	}
	for len(r.recs) > 0 && r.recs[0].pos < r.l.MinPos() {
		r.recs = r.recs[1:]
	}
}

func (r *randomRun) readOne() {
	if len(r.recs) == 0 {
		return
	}
	rec := r.recs[r.rng.IntN(len(r.recs))]
	m, err := r.l.ReadMessage(rec.pos, int(rec.size))
	if err != nil || m.QueueOffset != rec.id {
		r.t.Fatalf("ReadMessage(%d) = id %d, %v; want id %d", rec.pos, m.QueueOffset, err, rec.id)
	}
}

// check scans the whole log and compares it with the model.
func (r *randomRun) check() {
	var got []modelRec
	_, err := r.l.Scan(r.l.MinPos(), r.l.WrittenPos(), 0, func(pos int64, b []byte) error {
		m, _, err := DecodeRecord(b)
		got = append(got, modelRec{pos, int32(len(b)), m.QueueOffset})
		return err
	})
	if err != nil {
		r.t.Fatalf("Scan: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(r.recs) {
		r.t.Fatalf("log holds\n%v\nmodel holds\n%v", got, r.recs)
	}
}
