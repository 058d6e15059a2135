package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/duomq/duomq/dr/meta"
)

// Drill records live in the metadata at drills/<id> (meta.KeyDrills): the
// whole report, so `duomq drill list|show` read them from any site.

// ID is the history id of a report: its start time and scenario name.
func (r *Report) ID() string {
	name := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '-'
	}, r.Scenario)
	return r.Started.UTC().Format("20060102T150405.000Z") + "-" + name
}

// HistoryKeep is how many reports the drill history keeps; older ones
// are deleted as new ones are saved (a report with its per-second series
// is tens of kilobytes, and the metadata's space is bounded).
const HistoryKeep = 200

// Save stores the report in the drill history and trims the history to
// HistoryKeep reports.
func Save(ctx context.Context, store *meta.Store, r *Report) error {
	if _, err := store.PutJSON(ctx, meta.KeyDrills+r.ID(), r, meta.AnyRevision); err != nil {
		return err
	}
	_, err := store.Trim(ctx, meta.KeyDrills, HistoryKeep)
	return err
}

// History lists the stored reports, newest first.
func History(ctx context.Context, store *meta.Store) ([]*Report, error) {
	raw, _, err := store.ListJSON(ctx, meta.KeyDrills)
	if err != nil {
		return nil, err
	}
	var out []*Report
	for key, b := range raw {
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("drill record %s: %w", key, err)
		}
		out = append(out, &r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}

// Get reads one stored report by id.
func Get(ctx context.Context, store *meta.Store, id string) (*Report, error) {
	var r Report
	if _, err := store.GetJSON(ctx, meta.KeyDrills+id, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
