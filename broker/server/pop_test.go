package server

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/internal/rpcerr"
)

func TestPopAckOverGRPC(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, &brokerpb.CreateTopicRequest{Topic: &brokerpb.TopicConfig{Name: "t1", Queues: 2}}); err != nil {
		t.Fatal(err)
	}
	sent, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", QueueId: -1, Idempotent: true, Messages: []*brokerpb.MessageInput{
		{Id: "m1", Body: []byte("a"), Tag: "x"},
	}})
	if err != nil || sent.Results[0].Duplicate {
		t.Fatalf("send %v %v", sent, err)
	}
	dup, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", QueueId: -1, Idempotent: true, Messages: []*brokerpb.MessageInput{{Id: "m1", Body: []byte("a")}}})
	if err != nil || !dup.Results[0].Duplicate || dup.Results[0].QueueOffset != sent.Results[0].QueueOffset || dup.Results[0].QueueId != sent.Results[0].QueueId {
		t.Fatalf("duplicate send %v %v", dup, err)
	}
	pop, err := c.Pop(ctx, &brokerpb.PopRequest{Group: "g", Topic: "t1", QueueId: -1, MaxMessages: 8, InvisibleMillis: 60_000,
		WaitMillis: 2000, InitialPosition: brokerpb.InitialPosition_INITIAL_POSITION_EARLIEST, Tags: []string{"x"}})
	if err != nil || len(pop.Messages) != 1 {
		t.Fatalf("pop %v %v", pop, err)
	}
	p := pop.Messages[0]
	if p.Message.Id != "m1" || p.Attempt != 1 || p.ReceiptHandle == "" || p.InvisibleUntilUnixNano == 0 {
		t.Fatalf("popped %v", p)
	}
	ch, err := c.ChangeInvisibleDuration(ctx, &brokerpb.ChangeInvisibleDurationRequest{Group: "g", Topic: "t1", ReceiptHandle: p.ReceiptHandle, InvisibleMillis: 30_000})
	if err != nil || ch.ReceiptHandle == p.ReceiptHandle {
		t.Fatalf("change %v %v", ch, err)
	}
	_, err = c.Ack(ctx, &brokerpb.AckRequest{Group: "g", Topic: "t1", ReceiptHandle: p.ReceiptHandle})
	if status.Code(err) != codes.FailedPrecondition || rpcerr.Reason(err) != ReasonStaleReceipt {
		t.Fatalf("ack with the replaced handle: %v", err)
	}
	if _, err := c.Ack(ctx, &brokerpb.AckRequest{Group: "g", Topic: "t1", ReceiptHandle: ch.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	q, err := c.QueryOffset(ctx, &brokerpb.QueryOffsetRequest{Group: "g", Topic: "t1", QueueId: sent.Results[0].QueueId})
	if err != nil || q.Offset != 1 {
		t.Fatalf("committed %v %v", q, err)
	}
}

func TestPopAndFencingErrorsOverGRPC(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, &brokerpb.CreateTopicRequest{Topic: &brokerpb.TopicConfig{Name: "t1", Queues: 1}}); err != nil {
		t.Fatal(err)
	}
	// A send with epoch 5 fences the topic at 5 (adopted).
	if _, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", Epoch: 5, Messages: []*brokerpb.MessageInput{{Body: []byte("x")}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"stale epoch", func() error {
			_, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", Epoch: 4, Messages: []*brokerpb.MessageInput{{Body: []byte("x")}}})
			return err
		}, codes.FailedPrecondition, ReasonStaleEpoch},
		{"missing epoch on a fenced topic", func() error {
			_, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", Messages: []*brokerpb.MessageInput{{Body: []byte("x")}}})
			return err
		}, codes.FailedPrecondition, ReasonStaleEpoch},
		{"pop bad group", func() error {
			_, err := c.Pop(ctx, &brokerpb.PopRequest{Group: "no good", Topic: "t1", QueueId: -1})
			return err
		}, codes.InvalidArgument, ReasonInvalidName},
		{"pop unknown topic", func() error {
			_, err := c.Pop(ctx, &brokerpb.PopRequest{Group: "g", Topic: "nope", QueueId: -1})
			return err
		}, codes.NotFound, ReasonTopicNotFound},
		{"pop bad queue", func() error {
			_, err := c.Pop(ctx, &brokerpb.PopRequest{Group: "g", Topic: "t1", QueueId: 3})
			return err
		}, codes.InvalidArgument, ReasonInvalidQueue},
		{"pop negative wait", func() error {
			_, err := c.Pop(ctx, &brokerpb.PopRequest{Group: "g", Topic: "t1", WaitMillis: -1})
			return err
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"pop invisible too long", func() error {
			_, err := c.Pop(ctx, &brokerpb.PopRequest{Group: "g", Topic: "t1", InvisibleMillis: 1 << 62})
			return err
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"ack malformed receipt", func() error {
			_, err := c.Ack(ctx, &brokerpb.AckRequest{Group: "g", Topic: "t1", ReceiptHandle: "garbage!"})
			return err
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"change negative", func() error {
			_, err := c.ChangeInvisibleDuration(ctx, &brokerpb.ChangeInvisibleDurationRequest{Group: "g", Topic: "t1", ReceiptHandle: "x", InvisibleMillis: -1})
			return err
		}, codes.InvalidArgument, ReasonInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || rpcerr.Reason(err) != tt.reason {
				t.Fatalf("got %v / %q, want %v / %q (err %v)", status.Code(err), rpcerr.Reason(err), tt.code, tt.reason, err)
			}
		})
	}
	// A stale receipt: acked twice.
	pop, err := c.Pop(ctx, &brokerpb.PopRequest{Group: "g", Topic: "t1", QueueId: 0, WaitMillis: 2000,
		InitialPosition: brokerpb.InitialPosition_INITIAL_POSITION_EARLIEST})
	if err != nil || len(pop.Messages) != 1 {
		t.Fatalf("pop %v %v", pop, err)
	}
	h := pop.Messages[0].ReceiptHandle
	if _, err := c.Ack(ctx, &brokerpb.AckRequest{Group: "g", Topic: "t1", ReceiptHandle: h}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Ack(ctx, &brokerpb.AckRequest{Group: "g", Topic: "t1", ReceiptHandle: h})
	if status.Code(err) != codes.FailedPrecondition || rpcerr.Reason(err) != ReasonStaleReceipt {
		t.Fatalf("second ack: %v", err)
	}
}
