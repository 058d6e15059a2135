package server

import (
	"context"
	"fmt"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/broker/commitlog"
)

// Server implements brokerpb.BrokerServer over a *broker.Broker.
type Server struct {
	brokerpb.UnimplementedBrokerServer
	b *broker.Broker
}

// New returns the gRPC service of b.
func New(b *broker.Broker) *Server { return &Server{b: b} }

// Send appends a message or a batch to one queue.
func (s *Server) Send(ctx context.Context, req *brokerpb.SendRequest) (*brokerpb.SendResponse, error) {
	msgs := make([]broker.Message, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		msgs[i] = broker.Message{
			ID: m.GetId(), Keys: m.GetKeys(), Tag: m.GetTag(), ShardingKey: m.GetShardingKey(),
			Properties: m.GetProperties(), Body: m.GetBody(), BornDC: m.GetBornDc(), Flags: m.GetFlags(),
		}
		if ns := m.GetBornTimeUnixNano(); ns != 0 {
			msgs[i].BornTime = time.Unix(0, ns)
		}
	}
	res, err := s.b.Send(ctx, broker.SendRequest{
		Topic: req.GetTopic(), QueueID: req.GetQueueId(), Messages: msgs,
		Epoch: req.GetEpoch(), Idempotent: req.GetIdempotent(),
	})
	if err != nil {
		return nil, errTable.Status(err)
	}
	out := &brokerpb.SendResponse{Results: make([]*brokerpb.SendResult, len(res))}
	for i, r := range res {
		out.Results[i] = &brokerpb.SendResult{
			Id: r.ID, QueueId: r.QueueID, QueueOffset: r.QueueOffset,
			StoreTimeUnixNano: r.StoreTime.UnixNano(), Duplicate: r.Duplicate,
		}
	}
	return out, nil
}

// Pull reads one queue, long-polling up to wait_millis.
func (s *Server) Pull(ctx context.Context, req *brokerpb.PullRequest) (*brokerpb.PullResponse, error) {
	if req.GetWaitMillis() < 0 {
		return nil, errTable.Status(fmt.Errorf("%w: wait_millis %d is negative", broker.ErrInvalidArgument, req.GetWaitMillis()))
	}
	res, err := s.b.Pull(ctx, broker.PullRequest{
		Topic: req.GetTopic(), QueueID: req.GetQueueId(), Offset: req.GetOffset(),
		MaxMessages: int(req.GetMaxMessages()), MaxBytes: int(req.GetMaxBytes()),
		Wait: time.Duration(req.GetWaitMillis()) * time.Millisecond, Tags: req.GetTags(),
	})
	if err != nil {
		return nil, errTable.Status(err)
	}
	out := &brokerpb.PullResponse{NextOffset: res.NextOffset, MinOffset: res.MinOffset, MaxOffset: res.MaxOffset}
	out.Messages = make([]*brokerpb.Message, len(res.Messages))
	for i := range res.Messages {
		out.Messages[i] = ToProto(&res.Messages[i])
	}
	return out, nil
}

// ToProto converts a stored message to its wire form.
func ToProto(m *commitlog.Message) *brokerpb.Message {
	return &brokerpb.Message{
		Id: m.ID, Topic: m.Topic, QueueId: m.QueueID, QueueOffset: m.QueueOffset, Keys: m.Keys,
		Tag: m.Tag, ShardingKey: m.ShardingKey, Properties: m.Properties, Body: m.Body,
		BornTimeUnixNano: m.BornTime, StoreTimeUnixNano: m.StoreTime, BornDc: m.BornDC,
		Flags: m.Flags, Epoch: m.Epoch,
	}
}

// CommitOffset records a group's consumed offset.
func (s *Server) CommitOffset(_ context.Context, req *brokerpb.CommitOffsetRequest) (*brokerpb.CommitOffsetResponse, error) {
	err := s.b.CommitOffset(req.GetGroup(), req.GetTopic(), req.GetQueueId(), req.GetOffset())
	return &brokerpb.CommitOffsetResponse{}, errTable.Status(err)
}

// QueryOffset returns a group's committed offset.
func (s *Server) QueryOffset(_ context.Context, req *brokerpb.QueryOffsetRequest) (*brokerpb.QueryOffsetResponse, error) {
	off, ok, err := s.b.QueryOffset(req.GetGroup(), req.GetTopic(), req.GetQueueId())
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.QueryOffsetResponse{Offset: off, Found: ok}, nil
}

// GetQueueOffsets returns a queue's min and max offsets.
func (s *Server) GetQueueOffsets(_ context.Context, req *brokerpb.GetQueueOffsetsRequest) (*brokerpb.GetQueueOffsetsResponse, error) {
	lo, hi, err := s.b.QueueOffsets(req.GetTopic(), req.GetQueueId())
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.GetQueueOffsetsResponse{MinOffset: lo, MaxOffset: hi}, nil
}

// OffsetForTime returns the first offset stored at or after a time.
func (s *Server) OffsetForTime(_ context.Context, req *brokerpb.OffsetForTimeRequest) (*brokerpb.OffsetForTimeResponse, error) {
	off, err := s.b.OffsetForTime(req.GetTopic(), req.GetQueueId(), time.Unix(0, req.GetTimeUnixNano()))
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.OffsetForTimeResponse{Offset: off}, nil
}

// LookupByID finds a message by its id: its newest record, or with trace
// every record of it on this broker.
func (s *Server) LookupByID(_ context.Context, req *brokerpb.LookupByIDRequest) (*brokerpb.LookupResponse, error) {
	if req.GetId() == "" {
		return nil, errTable.Status(fmt.Errorf("%w: id is empty", broker.ErrInvalidArgument))
	}
	if req.GetTrace() {
		res, err := s.trace(broker.TraceRequest{Topic: req.GetTopic(), ID: req.GetId()})
		if err == nil && len(res.Messages) == 0 {
			err = fmt.Errorf("%w: id %q", broker.ErrNotFound, req.GetId())
		}
		return res, errTable.Status(err)
	}
	m, err := s.b.LookupIDIn(req.GetTopic(), req.GetId())
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.LookupResponse{Messages: []*brokerpb.Message{ToProto(&m)}}, nil
}

// LookupByKey finds a topic's messages carrying a key, with trace their
// records in the topic's mirrors too and the copies made of them.
func (s *Server) LookupByKey(_ context.Context, req *brokerpb.LookupByKeyRequest) (*brokerpb.LookupResponse, error) {
	if req.GetKey() == "" {
		return nil, errTable.Status(fmt.Errorf("%w: key is empty", broker.ErrInvalidArgument))
	}
	if req.GetTrace() {
		res, err := s.trace(broker.TraceRequest{Topic: req.GetTopic(), Key: req.GetKey(), Max: int(req.GetMaxResults())})
		return res, errTable.Status(err)
	}
	ms, err := s.b.LookupKey(req.GetTopic(), req.GetKey(), int(req.GetMaxResults()))
	if err != nil {
		return nil, errTable.Status(err)
	}
	out := &brokerpb.LookupResponse{}
	for i := range ms {
		out.Messages = append(out.Messages, ToProto(&ms[i]))
	}
	return out, nil
}

func (s *Server) trace(req broker.TraceRequest) (*brokerpb.LookupResponse, error) {
	copies, err := s.b.Trace(req)
	if err != nil {
		return nil, err
	}
	out := &brokerpb.LookupResponse{}
	for i := range copies {
		c := &copies[i]
		out.Messages = append(out.Messages, ToProto(&c.Message))
		out.Traces = append(out.Traces, traceToProto(c))
	}
	return out, nil
}

func traceToProto(c *broker.TracedCopy) *brokerpb.RecordTrace {
	out := &brokerpb.RecordTrace{ReplicatedAtUnixNano: unixNano(c.ReplicatedAt)}
	for _, g := range c.Groups {
		pg := &brokerpb.GroupProgress{
			Group: g.Group, CommittedOffset: g.Committed, Consumed: g.Consumed,
			InFlight: g.InFlight, Attempt: int32(g.Attempt), InvisibleUntilUnixNano: unixNano(g.InvisibleUntil),
			Settled: g.Settled, Synced: g.Passed.Synced,
			ConsumedAfterUnixNano: unixNano(g.Passed.After), ConsumedByUnixNano: unixNano(g.Passed.By),
		}
		out.Groups = append(out.Groups, pg)
	}
	return out
}

// unixNano is t in unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
