package controller

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
)

// DrillSummary is a stored drill report in a few fields. Package drills
// writes whole reports at drills/<id> (meta.KeyDrills); the controller
// reads only these fields, so it does not depend on the report's layout
// beyond them (and package drills, which imports this one, stays out of
// its imports).
type DrillSummary struct {
	ID       string    `json:"id"`
	Scenario string    `json:"scenario"`
	Started  time.Time `json:"started"`
	// Finished is when the drill ended (zero for a report without an end).
	Finished time.Time `json:"finished,omitzero"`
	Passed   bool      `json:"passed"`
}

// drillFields are the fields of a drill report that make its summary.
type drillFields struct {
	Scenario string    `json:"scenario"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	Pass     bool      `json:"pass"`
}

// Drill history limits.
const (
	DefaultDrillLimit = 50
	MaxDrillLimit     = 1000
)

// Drills returns the newest stored drill reports, newest first. A drill's
// id starts with its UTC start time, so the key order is the start order
// and only the newest limit records are read.
func (c *Controller) Drills(ctx context.Context, limit int) ([]DrillSummary, error) {
	if limit == 0 {
		limit = DefaultDrillLimit
	}
	if limit < 0 || limit > MaxDrillLimit {
		return nil, errorf(ErrInvalid, "limit %d: use 1..%d", limit, MaxDrillLimit)
	}
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), c.cfg.MetaTimeout)
	defer cancel()
	prefix := c.store.Key(meta.KeyDrills)
	resp, err := c.cli.Get(ctx, prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, errorf(meta.ErrUnavailable, "read drill history: %v", err)
	}
	out := make([]DrillSummary, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var f drillFields
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			c.log.Warn("skipping undecodable drill record", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, DrillSummary{ID: strings.TrimPrefix(string(kv.Key), prefix), Scenario: f.Scenario,
			Started: f.Started, Finished: f.Ended, Passed: f.Pass})
	}
	// Ids written by other means may not sort by time.
	slices.SortStableFunc(out, func(a, b DrillSummary) int {
		return cmp.Or(b.Started.Compare(a.Started), cmp.Compare(b.ID, a.ID))
	})
	return out, nil
}
