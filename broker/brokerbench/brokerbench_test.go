package brokerbench

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestRunMeasuresEverything runs a very short bench: every figure must be
// measured (positive) and the JSON must carry the reference beside it.
func TestRunMeasuresEverything(t *testing.T) {
	o := DefaultOptions()
	o.Dir, o.Duration, o.Producers = t.TempDir(), 200*time.Millisecond, 8
	r, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{
		"fsyncs/s": r.Reference.FsyncsPerSec, "chunk MB/s": r.Reference.ChunkMBPerSec,
		"async msg/s": r.AsyncAppend.MsgPerSec, "sync msg/s": r.SyncGroupCommit.MsgPerSec,
		"pull msg/s": r.Pull.MsgPerSec, "send p50": r.Latency.SendSync.P50us, "rss": r.MaxRSSMiB,
	} {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	b, _ := json.Marshal(r)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["reference"] == nil || m["sync_group_commit"] == nil {
		t.Fatalf("json %s", b)
	}
}
