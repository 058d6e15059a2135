package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/duomq/duomq/dr/meta"
)

// Audit kinds besides the transition kinds.
const (
	AuditTrafficSwitch  = "traffic-switch"
	AuditTrafficWeights = "traffic-weights"
	AuditTrafficBlock   = "traffic-block"
	AuditTrafficUnblock = "traffic-unblock"
	AuditDCDown         = "dc-down"
	AuditDCActive       = "dc-active"
)

// Outcomes of transitions and audit records.
const (
	OutcomeOK          = "ok"
	OutcomeFailed      = "failed"
	OutcomeRolledBack  = "rolled-back"
	OutcomeInterrupted = "interrupted"
)

// AuditRecord is one entry of the audit log, audit/<%020d unix nanos>:
// every finished or failed transition and every traffic change.
type AuditRecord struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	// ID is the transition's id (empty for traffic changes).
	ID    string `json:"id,omitempty"`
	Kind  string `json:"kind"`
	Topic string `json:"topic,omitempty"`
	DC    string `json:"dc,omitempty"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	// Reason is why the change was made (the operator's, or what the
	// controller detected).
	Reason string `json:"reason,omitempty"`
	Actor  string `json:"actor"`
	// Controller is the leader that made the change.
	Controller string `json:"controller"`
	// Before and After are the changed record (an ordered topic's fencing
	// record, or the traffic policy).
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	// Outcome is ok, failed or rolled-back; Error says why when not ok.
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	// PauseSeconds is the write pause of a topic (from the blocking write
	// to the last routing write); DurationSeconds the whole change.
	PauseSeconds    float64 `json:"pause_seconds,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
}

func rawJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// audit appends a record to the audit log. It writes with the etcd client
// directly: the store's raw JSON helpers serve only controller/ and
// drills/ keys. A failure is logged, never returned: the change it
// records has been made.
func (c *Controller) audit(ctx context.Context, rec AuditRecord) {
	rec.Version = 1
	rec.Controller = c.cfg.ID
	if rec.Time.IsZero() {
		rec.Time = c.clock.Now().UTC()
	}
	b, err := json.Marshal(rec)
	if err != nil {
		c.log.Error("cannot encode audit record", "kind", rec.Kind, "err", err)
		return
	}
	// A key taken by another record of the same nanosecond moves on.
	for n := rec.Time.UnixNano(); ; n++ {
		key := c.store.Key(meta.KeyAudit + fmt.Sprintf("%020d", n))
		actx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), c.cfg.MetaTimeout)
		resp, err := c.cli.Txn(actx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(b))).Commit()
		cancel()
		if err != nil {
			c.log.Error("cannot write audit record", "kind", rec.Kind, "topic", rec.Topic, "outcome", rec.Outcome, "err", err)
			return
		}
		if resp.Succeeded {
			c.trimAudit(ctx)
			return
		}
	}
}

// trimAudit keeps the newest audit-keep records. A failure is logged: the
// next record's write tries again.
func (c *Controller) trimAudit(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
	defer cancel()
	if n, err := c.store.Trim(ctx, meta.KeyAudit, c.cfg.AuditKeep); err != nil {
		c.log.Warn("audit log not trimmed", "err", err)
	} else if n > 0 {
		c.log.Info("oldest audit records deleted", "deleted", n, "keep", c.cfg.AuditKeep)
	}
}

// Audit limits.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 1000
)

// Audit returns the newest audit records, newest first.
func (c *Controller) Audit(ctx context.Context, limit int) ([]AuditRecord, error) {
	if limit == 0 {
		limit = DefaultAuditLimit
	}
	if limit < 0 || limit > MaxAuditLimit {
		return nil, errorf(ErrInvalid, "limit %d: use 1..%d", limit, MaxAuditLimit)
	}
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), c.cfg.MetaTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.store.Key(meta.KeyAudit), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, errorf(meta.ErrUnavailable, "read audit log: %v", err)
	}
	out := make([]AuditRecord, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r AuditRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			c.log.Warn("skipping undecodable audit record", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}
