package client

import (
	"context"
	"time"

	"github.com/duomq/duomq/api/proxypb"
)

// TraceQuery names the message(s) to trace: by ID (Topic optional: every
// topic is searched without it), or by Key in Topic (the newest Max
// messages carrying it; 0: 32).
type TraceQuery struct {
	Topic string
	ID    string
	Key   string
	Max   int
}

// TraceResult is the answer of TraceMessage.
type TraceResult struct {
	// Messages are newest first.
	Messages []MessageTrace `json:"messages"`
	// Unreachable lists the brokers ("dc/broker: error") the proxy could
	// not ask: records they hold are missing.
	Unreachable []string `json:"unreachable,omitempty"`
}

// MessageTrace is where one message went: its stored records in every
// DC and what each consumer group did with it. Timeline tells it in
// order.
type MessageTrace struct {
	ID       string    `json:"id"`
	Topic    string    `json:"topic"`
	Keys     []string  `json:"keys,omitempty"`
	Tag      string    `json:"tag,omitempty"`
	BornDC   string    `json:"born_dc"`
	BornTime time.Time `json:"born_time"`
	// DeliverAt is set for a delayed message.
	DeliverAt time.Time `json:"deliver_at,omitzero"`
	// Records are the message's records in its topic or a mirror of it,
	// oldest first: the original, then its copies in other DCs.
	Records []TracedRecord `json:"records"`
	// Groups are the groups subscribing to the topic and any other with
	// progress on a record, by name.
	Groups []GroupTrace `json:"groups"`
}

// TracedRecord is one stored record of a message.
type TracedRecord struct {
	DC     string `json:"dc"`
	Broker string `json:"broker"`
	// StoredIn is the topic, its mirror %MIRROR%<dc>%<topic>,
	// %RETRY%<group>, %DLQ%<group>, or %SCHEDULE% while not yet due.
	StoredIn  string    `json:"stored_in"`
	Queue     uint32    `json:"queue"`
	Offset    int64     `json:"offset"`
	ID        string    `json:"id"`
	StoreTime time.Time `json:"store_time"`
	Epoch     uint64    `json:"epoch,omitempty"`
	// Replicated: copied from another DC, at ReplicatedAt.
	Replicated   bool      `json:"replicated"`
	ReplicatedAt time.Time `json:"replicated_at,omitzero"`
	// ReconsumeTimes: a retry or dead-letter copy made after this many
	// deliveries.
	ReconsumeTimes int `json:"reconsume_times,omitempty"`
	// Scheduled: waiting in %SCHEDULE% until DeliverAt.
	Scheduled bool      `json:"scheduled,omitempty"`
	DeliverAt time.Time `json:"deliver_at,omitzero"`
}

// GroupTrace is what one consumer group did with a message.
type GroupTrace struct {
	Group string `json:"group"`
	// Subscribed: the group subscribes to the topic in the metadata.
	Subscribed bool `json:"subscribed"`
	// Deliveries are the group's progress on each of the message's
	// Records (scheduled ones excepted), in the same order.
	Deliveries []RecordProgress `json:"deliveries"`
	// Retries are its retry copies, oldest first; DeadLetters its dead
	// letters.
	Retries     []RecordProgress `json:"retries,omitempty"`
	DeadLetters []RecordProgress `json:"dead_letters,omitempty"`
}

// RecordProgress is a group's position on the queue of one record.
type RecordProgress struct {
	Record TracedRecord `json:"record"`
	// CommittedOffset is the group's committed offset of the queue (-1:
	// none).
	CommittedOffset int64 `json:"committed_offset"`
	// Consumed: the committed offset is past the record. For a dead
	// letter: re-driven.
	Consumed bool `json:"consumed"`
	// ConsumedAfter and ConsumedBy bound when (zero: not remembered by
	// the broker, which keeps recent moves since it started).
	ConsumedAfter time.Time `json:"consumed_after,omitzero"`
	ConsumedBy    time.Time `json:"consumed_by,omitzero"`
	// Synced: the offset was copied from another DC's.
	Synced bool `json:"synced,omitempty"`
	// InFlight: delivered (Attempt times), not yet acked.
	InFlight       bool      `json:"in_flight,omitempty"`
	Attempt        int       `json:"attempt,omitempty"`
	InvisibleUntil time.Time `json:"invisible_until,omitzero"`
	// Settled: acked (or handed to the retry topic) while an earlier
	// message holds the committed offset back.
	Settled bool `json:"settled,omitempty"`
}

// TraceMessage asks the proxy where a message went, in every DC. A
// message found nowhere is ErrMessageNotFound; an unknown topic
// ErrTopicNotFound.
func (c *Client) TraceMessage(ctx context.Context, q TraceQuery) (*TraceResult, error) {
	var resp *proxypb.TraceMessageResponse
	op := "trace message " + q.ID
	if q.Key != "" {
		op = "trace key " + q.Key + " of " + q.Topic
	}
	err := c.call(ctx, op, c.cfg.RequestTimeout, func(ctx context.Context) error {
		var err error
		resp, err = c.api.TraceMessage(ctx, &proxypb.TraceMessageRequest{Topic: q.Topic, Id: q.ID, Key: q.Key, MaxMessages: int32(q.Max)})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := &TraceResult{Unreachable: resp.GetUnreachable()}
	for _, m := range resp.GetMessages() {
		out.Messages = append(out.Messages, traceFromPB(m))
	}
	return out, nil
}

func traceFromPB(m *proxypb.MessageTrace) MessageTrace {
	out := MessageTrace{
		ID: m.GetId(), Topic: m.GetTopic(), Keys: m.GetKeys(), Tag: m.GetTag(), BornDC: m.GetBornDc(),
		BornTime: unixNano(m.GetBornTimeUnixNano()), DeliverAt: unixNano(m.GetDeliverAtUnixNano()),
		Records: []TracedRecord{}, Groups: []GroupTrace{},
	}
	for _, r := range m.GetRecords() {
		out.Records = append(out.Records, recordFromPB(r))
	}
	for _, g := range m.GetGroups() {
		out.Groups = append(out.Groups, GroupTrace{
			Group: g.GetGroup(), Subscribed: g.GetSubscribed(), Deliveries: progressFromPB(g.GetDeliveries()),
			Retries: progressFromPB(g.GetRetries()), DeadLetters: progressFromPB(g.GetDeadLetters()),
		})
	}
	return out
}

func recordFromPB(r *proxypb.TracedRecord) TracedRecord {
	return TracedRecord{
		DC: r.GetDc(), Broker: r.GetBroker(), StoredIn: r.GetStoredIn(), Queue: r.GetQueueId(), Offset: r.GetOffset(),
		ID: r.GetId(), StoreTime: unixNano(r.GetStoreTimeUnixNano()), Epoch: r.GetEpoch(),
		Replicated: r.GetReplicated(), ReplicatedAt: unixNano(r.GetReplicatedAtUnixNano()),
		ReconsumeTimes: int(r.GetReconsumeTimes()), Scheduled: r.GetScheduled(), DeliverAt: unixNano(r.GetDeliverAtUnixNano()),
	}
}

func progressFromPB(ps []*proxypb.RecordProgress) []RecordProgress {
	out := make([]RecordProgress, 0, len(ps))
	for _, p := range ps {
		out = append(out, RecordProgress{
			Record: recordFromPB(p.GetRecord()), CommittedOffset: p.GetCommittedOffset(), Consumed: p.GetConsumed(),
			ConsumedAfter: unixNano(p.GetConsumedAfterUnixNano()), ConsumedBy: unixNano(p.GetConsumedByUnixNano()),
			Synced: p.GetSynced(), InFlight: p.GetInFlight(), Attempt: int(p.GetAttempt()),
			InvisibleUntil: unixNano(p.GetInvisibleUntilUnixNano()), Settled: p.GetSettled(),
		})
	}
	return out
}
