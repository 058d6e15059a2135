package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCorruptRecordNeverServed flips a byte inside a stored body of an old
// (not last) segment, reopens, and expects the pull of that message to fail
// with ErrCorruption, counted in the metrics, while its neighbours in other
// segments still read.
func TestCorruptRecordNeverServed(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.SegmentBytes = 96 << 10
	cfg.MaxMessageBytes = 16 << 10
	b, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "t1", 1)
	body := make([]byte, 1000)
	for i := 0; i < 200; i++ {
		body[0] = byte(i)
		if _, err := b.Send(context.Background(), SendRequest{Topic: "t1", QueueID: 0, Messages: []Message{{Body: body}}}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	segs, _ := filepath.Glob(filepath.Join(cfg.DataDir, "commitlog", "0*"))
	sort.Strings(segs)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	f, err := os.OpenFile(segs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Offset 5000 is inside the body of the fifth record or so.
	if _, err := f.WriteAt([]byte{0xff, 0x00, 0xff}, 5000); err != nil {
		t.Fatal(err)
	}
	f.Close()

	reg := prometheus.NewRegistry()
	b2, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	var corrupt int
	for off := int64(0); off < 200; off++ {
		res, err := b2.Pull(context.Background(), PullRequest{Topic: "t1", Offset: off, MaxMessages: 1})
		if errors.Is(err, ErrCorruption) {
			corrupt++
			continue
		}
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if len(res.Messages) != 1 || res.Messages[0].Body[0] != byte(off) {
			t.Fatalf("offset %d served wrong data", off)
		}
	}
	if corrupt != 1 {
		t.Fatalf("%d corrupt messages reported, want exactly 1", corrupt)
	}
	if n := testutil.ToFloat64(b2.metrics.corruptRecords); n < 1 {
		t.Fatalf("corrupt records metric = %v", n)
	}
}
