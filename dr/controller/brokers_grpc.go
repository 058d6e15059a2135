package controller

import (
	"context"

	"google.golang.org/grpc"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/internal/brokerconn"
)

// GRPCBrokers implements BrokerOps over the broker gRPC service, with one
// connection per broker address (internal/brokerconn).
type GRPCBrokers struct {
	pool *brokerconn.Pool
}

// NewGRPCBrokers dials brokers with opts (default: plain TCP).
func NewGRPCBrokers(opts ...grpc.DialOption) *GRPCBrokers {
	return &GRPCBrokers{pool: brokerconn.New(opts...)}
}

func (b *GRPCBrokers) client(addr string) (brokerpb.BrokerClient, error) {
	c, err := b.pool.Client(addr)
	if err != nil {
		return nil, errorf(ErrBroker, "broker %s: %v", addr, err)
	}
	return c, nil
}

// Close closes every connection. Safe to call twice.
func (b *GRPCBrokers) Close() error { return b.pool.Close() }

func brokerErr(addr, call string, err error) error {
	return errorf(ErrBroker, "broker %s: %s: %v", addr, call, err)
}

func queueStates(qs []*brokerpb.QueueReplicaState) []QueueState {
	out := make([]QueueState, len(qs))
	for i, q := range qs {
		out[i] = QueueState{Queue: int(q.GetQueueId()), NextOffset: q.GetNextOffset(), LastEpoch: q.GetLastEpoch()}
	}
	return out
}

// Fence implements BrokerOps.
func (b *GRPCBrokers) Fence(ctx context.Context, addr, topic string, epoch uint64) ([]QueueState, error) {
	c, err := b.client(addr)
	if err != nil {
		return nil, err
	}
	resp, err := c.Fence(ctx, &brokerpb.FenceRequest{Topic: topic, Epoch: epoch})
	if err != nil {
		return nil, brokerErr(addr, "fence", err)
	}
	return queueStates(resp.GetQueues()), nil
}

// ReplicaState implements BrokerOps.
func (b *GRPCBrokers) ReplicaState(ctx context.Context, addr, topic string) (ReplicaState, error) {
	c, err := b.client(addr)
	if err != nil {
		return ReplicaState{}, err
	}
	resp, err := c.ReplicaState(ctx, &brokerpb.ReplicaStateRequest{Topic: topic})
	if err != nil {
		return ReplicaState{}, brokerErr(addr, "replica state", err)
	}
	return ReplicaState{
		Epoch: resp.GetEpoch(), Primary: resp.GetPrimary(), Blocked: resp.GetBlocked(),
		Leader: resp.GetLeader(), Queues: queueStates(resp.GetQueues()), OutOfSync: resp.GetOutOfSync(),
	}, nil
}

// ConsumerOffsets implements BrokerOps.
func (b *GRPCBrokers) ConsumerOffsets(ctx context.Context, addr, topic string) ([]ConsumerOffset, error) {
	c, err := b.client(addr)
	if err != nil {
		return nil, err
	}
	resp, err := c.ListConsumerOffsets(ctx, &brokerpb.ListConsumerOffsetsRequest{Topic: topic})
	if err != nil {
		return nil, brokerErr(addr, "list consumer offsets", err)
	}
	out := make([]ConsumerOffset, len(resp.GetOffsets()))
	for i, o := range resp.GetOffsets() {
		out[i] = ConsumerOffset{Group: o.GetGroup(), Topic: o.GetTopic(), Queue: int(o.GetQueueId()), Offset: o.GetOffset()}
	}
	return out, nil
}

// SyncConsumerOffsets implements BrokerOps.
func (b *GRPCBrokers) SyncConsumerOffsets(ctx context.Context, addr string, offsets []ConsumerOffset) error {
	c, err := b.client(addr)
	if err != nil {
		return err
	}
	req := &brokerpb.SyncConsumerOffsetsRequest{}
	for _, o := range offsets {
		req.Offsets = append(req.Offsets, &brokerpb.ConsumerOffset{Group: o.Group, Topic: o.Topic, QueueId: uint32(o.Queue), Offset: o.Offset})
	}
	if _, err := c.SyncConsumerOffsets(ctx, req); err != nil {
		return brokerErr(addr, "sync consumer offsets", err)
	}
	return nil
}

// QueueOffsets implements BrokerOps.
func (b *GRPCBrokers) QueueOffsets(ctx context.Context, addr, topic string, queue int) (int64, int64, error) {
	c, err := b.client(addr)
	if err != nil {
		return 0, 0, err
	}
	resp, err := c.GetQueueOffsets(ctx, &brokerpb.GetQueueOffsetsRequest{Topic: topic, QueueId: uint32(queue)})
	if err != nil {
		return 0, 0, brokerErr(addr, "queue offsets", err)
	}
	return resp.GetMinOffset(), resp.GetMaxOffset(), nil
}
