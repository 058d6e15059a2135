package server

import (
	"context"
	"fmt"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/broker"
)

// Pop hands out messages to a consumer group with an invisibility deadline.
func (s *Server) Pop(ctx context.Context, req *brokerpb.PopRequest) (*brokerpb.PopResponse, error) {
	if req.GetWaitMillis() < 0 || req.GetInvisibleMillis() < 0 || req.GetMaxMessages() < 0 || req.GetMaxAttempts() < 0 {
		return nil, errTable.Status(fmt.Errorf("%w: wait_millis, invisible_millis, max_messages and max_attempts must not be negative", broker.ErrInvalidArgument))
	}
	pr := broker.PopRequest{
		Group: req.GetGroup(), Topic: req.GetTopic(), QueueID: req.GetQueueId(),
		MaxMessages: int(req.GetMaxMessages()), Invisible: millis(req.GetInvisibleMillis()),
		Wait: millis(req.GetWaitMillis()), Tags: req.GetTags(), Ordered: req.GetOrdered(),
		InitialPosition: broker.InitialPosition(req.GetInitialPosition()), MaxAttempts: int(req.GetMaxAttempts()),
		PopID: req.GetPopId(),
	}
	if req.GetInitialPosition() == brokerpb.InitialPosition_INITIAL_POSITION_TIMESTAMP {
		pr.InitialTime = time.Unix(0, req.GetInitialTimeUnixNano())
	}
	res, err := s.b.Pop(ctx, pr)
	if err != nil {
		return nil, errTable.Status(err)
	}
	out := &brokerpb.PopResponse{Messages: make([]*brokerpb.PoppedMessage, len(res))}
	for i := range res {
		p := &res[i]
		out.Messages[i] = &brokerpb.PoppedMessage{
			Message: ToProto(&p.Message), ReceiptHandle: p.ReceiptHandle,
			Attempt: int32(p.Attempt), InvisibleUntilUnixNano: p.InvisibleUntil.UnixNano(),
		}
	}
	return out, nil
}

// Ack settles a popped message.
func (s *Server) Ack(_ context.Context, req *brokerpb.AckRequest) (*brokerpb.AckResponse, error) {
	err := s.b.Ack(req.GetGroup(), req.GetTopic(), req.GetReceiptHandle())
	return &brokerpb.AckResponse{}, errTable.Status(err)
}

// ChangeInvisibleDuration moves a popped message's deadline (0: deliver
// again at once) and returns its new receipt handle.
func (s *Server) ChangeInvisibleDuration(_ context.Context, req *brokerpb.ChangeInvisibleDurationRequest) (*brokerpb.ChangeInvisibleDurationResponse, error) {
	if req.GetInvisibleMillis() < 0 {
		return nil, errTable.Status(fmt.Errorf("%w: invisible_millis %d is negative", broker.ErrInvalidArgument, req.GetInvisibleMillis()))
	}
	h, err := s.b.ChangeInvisibleDuration(req.GetGroup(), req.GetTopic(), req.GetReceiptHandle(), millis(req.GetInvisibleMillis()))
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.ChangeInvisibleDurationResponse{ReceiptHandle: h}, nil
}

// millis converts a request's milliseconds, saturating instead of
// overflowing (the broker then refuses what is over its limits).
func millis(ms int64) time.Duration {
	const maxMillis = int64(1<<63-1) / int64(time.Millisecond)
	return time.Duration(min(ms, maxMillis)) * time.Millisecond
}

// ReleasePop implements brokerpb.BrokerServer.
func (s *Server) ReleasePop(_ context.Context, req *brokerpb.ReleasePopRequest) (*brokerpb.ReleasePopResponse, error) {
	n, err := s.b.ReleasePop(req.GetPopId())
	if err != nil {
		return nil, errTable.Status(err)
	}
	return &brokerpb.ReleasePopResponse{Released: int32(n)}, nil
}
