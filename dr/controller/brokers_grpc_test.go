package controller_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/broker/server"
	"github.com/duomq/duomq/dr/controller"
	"github.com/duomq/duomq/internal/etcdtest"
)

// TestGRPCBrokersAgainstABroker runs the controller's broker calls
// against a real broker service.
func TestControllerGRPCBrokersAgainstABroker(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.DataDir, cfg.FlushMode = t.TempDir(), broker.FlushAsync
	b, err := broker.New(cfg, testLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Start(ctx)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	brokerpb.RegisterBrokerServer(gs, server.New(b))
	go gs.Serve(l)
	ops := controller.NewGRPCBrokers()
	t.Cleanup(func() {
		ops.Close()
		gs.Stop()
		cancel()
		b.Close()
	})
	addr := l.Addr().String()
	cl, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	bc := brokerpb.NewBrokerClient(cl)
	rctx, rcancel := context.WithTimeout(context.Background(), wait)
	defer rcancel()
	if _, err := bc.CreateTopic(rctx, &brokerpb.CreateTopicRequest{Topic: &brokerpb.TopicConfig{Name: topic, Queues: 2, Permission: brokerpb.Permission_PERMISSION_READ_WRITE}}); err != nil {
		t.Fatal(err)
	}
	msgs := []*brokerpb.MessageInput{{Body: []byte("a")}, {Body: []byte("b")}, {Body: []byte("c")}}
	if _, err := bc.Send(rctx, &brokerpb.SendRequest{Topic: topic, QueueId: 1, Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.CommitOffset(rctx, &brokerpb.CommitOffsetRequest{Group: "billing", Topic: topic, QueueId: 1, Offset: 1}); err != nil {
		t.Fatal(err)
	}
	// The queue's entries are dispatched asynchronously.
	etcdtest.Eventually(t, wait, func() bool {
		_, hi, err := ops.QueueOffsets(rctx, addr, topic, 1)
		return err == nil && hi == 3
	}, "queue 1 does not reach offset 3")

	qs, err := ops.Fence(rctx, addr, topic, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 || qs[1].Queue != 1 || qs[1].NextOffset != 3 || qs[0].NextOffset != 0 {
		t.Fatalf("fence answered %+v", qs)
	}
	st, err := ops.ReplicaState(rctx, addr, topic)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 2 || !st.Blocked || len(st.Queues) != 2 || st.Queues[1].NextOffset != 3 {
		t.Fatalf("replica state %+v", st)
	}
	if _, err := ops.Fence(rctx, addr, topic, 1); err == nil {
		t.Fatal("a fence with an older epoch was accepted")
	}
	offs, err := ops.ConsumerOffsets(rctx, addr, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 1 || offs[0] != (controller.ConsumerOffset{Group: "billing", Topic: topic, Queue: 1, Offset: 1}) {
		t.Fatalf("consumer offsets %+v", offs)
	}
	short, scancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer scancel()
	if _, err := ops.ReplicaState(short, "127.0.0.1:1", topic); !errors.Is(err, controller.ErrBroker) {
		t.Fatalf("a call to an unreachable broker: %v, want ErrBroker", err)
	}
}
