package drills

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// writeRecords writes the workload's raw records to dir as JSON lines,
// sends.jsonl and deliveries.jsonl, for inspection beyond the checker's
// figures (which message was duplicated, when, where).
func (r *drillRun) writeRecords(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	if err := writeJSONLines(filepath.Join(dir, "sends.jsonl"), r.rec.sends); err != nil {
		return err
	}
	return writeJSONLines(filepath.Join(dir, "deliveries.jsonl"), r.rec.deliveries)
}

func writeJSONLines[T any](path string, items []T) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, it := range items {
		if err := enc.Encode(it); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
