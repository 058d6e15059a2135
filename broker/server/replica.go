package server

import (
	"context"
	"fmt"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/broker/offsets"
)

// ReplicaFetch implements brokerpb.BrokerServer.
func (s *Server) ReplicaFetch(ctx context.Context, req *brokerpb.ReplicaFetchRequest) (*brokerpb.ReplicaFetchResponse, error) {
	if req.GetWaitMillis() < 0 || req.GetOffset() < 0 {
		return nil, errTable.Status(fmt.Errorf("%w: wait_millis %d and offset %d must not be negative", broker.ErrInvalidArgument, req.GetWaitMillis(), req.GetOffset()))
	}
	res, err := s.b.ReplicaFetch(ctx, broker.ReplicaFetchRequest{
		Topic: req.GetTopic(), QueueID: req.GetQueueId(), Offset: req.GetOffset(), LastEpoch: req.GetLastEpoch(),
		MaxMessages: int(req.GetMaxMessages()), MaxBytes: int(req.GetMaxBytes()),
		Wait: time.Duration(req.GetWaitMillis()) * time.Millisecond, FollowerDC: req.GetFollowerDc(),
	})
	if err != nil {
		return nil, errTable.Status(err)
	}
	out := &brokerpb.ReplicaFetchResponse{LeaderNextOffset: res.LeaderNext, LeaderMinOffset: res.LeaderMin,
		Diverging: res.Diverging, TruncateTo: res.TruncateTo, Epoch: res.Epoch, LagBytes: res.LagBytes}
	out.Messages = make([]*brokerpb.Message, len(res.Messages))
	for i := range res.Messages {
		out.Messages[i] = ToProto(&res.Messages[i])
	}
	return out, nil
}

// FromProto converts a replicated message back to its stored form.
func FromProto(m *brokerpb.Message) commitlog.Message {
	return commitlog.Message{
		ID: m.GetId(), Topic: m.GetTopic(), QueueID: m.GetQueueId(), QueueOffset: m.GetQueueOffset(), Keys: m.GetKeys(),
		Tag: m.GetTag(), ShardingKey: m.GetShardingKey(), Properties: m.GetProperties(), Body: m.GetBody(),
		BornTime: m.GetBornTimeUnixNano(), StoreTime: m.GetStoreTimeUnixNano(), BornDC: m.GetBornDc(),
		Flags: m.GetFlags(), Epoch: m.GetEpoch(),
	}
}

// ReplicaAppend implements brokerpb.BrokerServer.
func (s *Server) ReplicaAppend(ctx context.Context, req *brokerpb.ReplicaAppendRequest) (*brokerpb.ReplicaAppendResponse, error) {
	msgs := make([]commitlog.Message, len(req.GetMessages()))
	for i, m := range req.GetMessages() {
		msgs[i] = FromProto(m)
	}
	next, err := s.b.ReplicaAppend(ctx, req.GetTopic(), req.GetQueueId(), req.GetOffset(), msgs)
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.ReplicaAppendResponse{NextOffset: next}, nil
}

// ReplicaTruncate implements brokerpb.BrokerServer.
func (s *Server) ReplicaTruncate(ctx context.Context, req *brokerpb.ReplicaTruncateRequest) (*brokerpb.ReplicaTruncateResponse, error) {
	if req.GetOffset() < 0 {
		return nil, errTable.Status(fmt.Errorf("%w: offset %d is negative", broker.ErrInvalidArgument, req.GetOffset()))
	}
	n, file, err := s.b.ReplicaTruncate(ctx, req.GetTopic(), req.GetQueueId(), req.GetOffset(), req.GetLeaderEpoch(), req.GetReason())
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.ReplicaTruncateResponse{Removed: n, QuarantineFile: file}, nil
}

// ReplicaState implements brokerpb.BrokerServer.
func (s *Server) ReplicaState(ctx context.Context, req *brokerpb.ReplicaStateRequest) (*brokerpb.ReplicaStateResponse, error) {
	st, err := s.b.ReplicaState(ctx, req.GetTopic())
	if err != nil {
		return nil, errTable.Status(err)
	}
	return replicaStateToProto(st), nil
}

func replicaStateToProto(st broker.ReplicaState) *brokerpb.ReplicaStateResponse {
	out := &brokerpb.ReplicaStateResponse{Epoch: st.Epoch, Primary: st.Order.Primary, Blocked: st.Order.Blocked, Leader: st.Leader, OutOfSync: st.OutOfSync}
	for _, q := range st.Queues {
		out.Queues = append(out.Queues, &brokerpb.QueueReplicaState{QueueId: q.QueueID, NextOffset: q.NextOffset,
			LastEpoch: q.LastEpoch, MinOffset: q.MinOffset, FollowerOffsets: q.FollowerOffsets})
	}
	return out
}

// Fence implements brokerpb.BrokerServer.
func (s *Server) Fence(ctx context.Context, req *brokerpb.FenceRequest) (*brokerpb.FenceResponse, error) {
	st, err := s.b.Fence(ctx, req.GetTopic(), req.GetEpoch())
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.FenceResponse{Queues: replicaStateToProto(st).Queues}, nil
}

// ListConsumerOffsets implements brokerpb.BrokerServer.
func (s *Server) ListConsumerOffsets(_ context.Context, req *brokerpb.ListConsumerOffsetsRequest) (*brokerpb.ListConsumerOffsetsResponse, error) {
	es, err := s.b.ConsumerOffsets(req.GetTopic())
	if err != nil {
		return nil, errTable.Status(err)
	}
	out := &brokerpb.ListConsumerOffsetsResponse{}
	for _, e := range es {
		out.Offsets = append(out.Offsets, &brokerpb.ConsumerOffset{Group: e.Group, Topic: e.Topic, QueueId: e.Queue, Offset: e.Offset})
	}
	return out, nil
}

// SyncConsumerOffsets implements brokerpb.BrokerServer.
func (s *Server) SyncConsumerOffsets(_ context.Context, req *brokerpb.SyncConsumerOffsetsRequest) (*brokerpb.SyncConsumerOffsetsResponse, error) {
	es := make([]offsets.Entry, len(req.GetOffsets()))
	for i, o := range req.GetOffsets() {
		es[i] = offsets.Entry{Group: o.GetGroup(), Topic: o.GetTopic(), Queue: o.GetQueueId(), Offset: o.GetOffset()}
	}
	n, err := s.b.SyncConsumerOffsets(es)
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.SyncConsumerOffsetsResponse{Applied: int32(n)}, nil
}
