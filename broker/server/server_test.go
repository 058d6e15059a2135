package server

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/internal/rpcerr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer runs a broker and its gRPC service on a loopback port.
func startServer(t *testing.T) brokerpb.BrokerClient {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SegmentBytes = 1 << 20
	cfg.MaxMessageBytes = 64 << 10
	cfg.QueueEntriesPerFile, cfg.IndexSlots, cfg.IndexEntriesPerFile = 64, 64, 256
	b, err := broker.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Start(ctx)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(int(cfg.MaxMessageBytes) + 2<<20))
	brokerpb.RegisterBrokerServer(gs, New(b))
	go gs.Serve(l)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); gs.Stop(); cancel(); b.Close() })
	return brokerpb.NewBrokerClient(conn)
}

func TestSendPullOverGRPC(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, &brokerpb.CreateTopicRequest{Topic: &brokerpb.TopicConfig{Name: "t1", Queues: 2}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", QueueId: 1, Messages: []*brokerpb.MessageInput{
		{Body: []byte("a"), Keys: []string{"k"}}, {Body: []byte("b")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 2 || res.Results[1].QueueOffset != 1 {
		t.Fatalf("send results %v", res.Results)
	}
	// A pull returns what is dispatched so far, which may be part of a batch.
	var pr *brokerpb.PullResponse
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if pr, err = c.Pull(ctx, &brokerpb.PullRequest{Topic: "t1", QueueId: 1, WaitMillis: 1000}); err != nil {
			t.Fatal(err)
		}
		if len(pr.Messages) == 2 {
			break
		}
	}
	if len(pr.Messages) != 2 || string(pr.Messages[1].Body) != "b" || pr.NextOffset != 2 {
		t.Fatalf("pull %v", pr)
	}
	got, err := c.LookupByID(ctx, &brokerpb.LookupByIDRequest{Id: res.Results[0].Id})
	if err != nil || string(got.Messages[0].Body) != "a" {
		t.Fatalf("lookup: %v", err)
	}
	if _, err := c.CommitOffset(ctx, &brokerpb.CommitOffsetRequest{Group: "g", Topic: "t1", QueueId: 1, Offset: 2}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.LookupByKey(ctx, &brokerpb.LookupByKeyRequest{Topic: "t1", Key: "k", Trace: true})
	if err != nil || len(tr.Messages) != 1 || len(tr.Traces) != 1 || len(tr.Traces[0].Groups) != 1 {
		t.Fatalf("trace by key: %v %v", tr, err)
	}
	if g := tr.Traces[0].Groups[0]; g.Group != "g" || !g.Consumed || g.CommittedOffset != 2 {
		t.Fatalf("trace: group progress %v", g)
	}
	if _, err := c.LookupByID(ctx, &brokerpb.LookupByIDRequest{Id: res.Results[0].Id, Topic: "other", Trace: true}); status.Code(err) != codes.NotFound {
		t.Fatalf("trace in another topic: %v", err)
	}
	q, err := c.QueryOffset(ctx, &brokerpb.QueryOffsetRequest{Group: "g", Topic: "t1", QueueId: 1})
	if err != nil || !q.Found || q.Offset != 2 {
		t.Fatalf("query offset %v %v", q, err)
	}
	ot, err := c.OffsetForTime(ctx, &brokerpb.OffsetForTimeRequest{Topic: "t1", QueueId: 1, TimeUnixNano: time.Now().Add(time.Hour).UnixNano()})
	if err != nil || ot.Offset != 2 {
		t.Fatalf("offset for time %v %v", ot, err)
	}
}

// TestEveryBadRequestHasItsStatus checks that each kind of bad input gets
// its own code and reason, a message, and no panic.
func TestEveryBadRequestHasItsStatus(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	if _, err := c.CreateTopic(ctx, &brokerpb.CreateTopicRequest{Topic: &brokerpb.TopicConfig{Name: "t1", Queues: 1}}); err != nil {
		t.Fatal(err)
	}
	c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", Messages: []*brokerpb.MessageInput{{Body: []byte("x")}}})
	big := make([]byte, 65<<10)
	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"unknown topic", func() error {
			_, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "nope", Messages: []*brokerpb.MessageInput{{Body: []byte("x")}}})
			return err
		}, codes.NotFound, ReasonTopicNotFound},
		{"bad name", func() error {
			_, err := c.Pull(ctx, &brokerpb.PullRequest{Topic: "bad name!"})
			return err
		}, codes.InvalidArgument, ReasonInvalidName},
		{"empty name", func() error {
			_, err := c.GetQueueOffsets(ctx, &brokerpb.GetQueueOffsetsRequest{Topic: ""})
			return err
		}, codes.InvalidArgument, ReasonInvalidName},
		{"bad queue", func() error {
			_, err := c.Pull(ctx, &brokerpb.PullRequest{Topic: "t1", QueueId: 7})
			return err
		}, codes.InvalidArgument, ReasonInvalidQueue},
		{"offset out of range", func() error {
			_, err := c.Pull(ctx, &brokerpb.PullRequest{Topic: "t1", Offset: 99})
			return err
		}, codes.OutOfRange, ReasonOffsetOutOfRange},
		{"oversize", func() error {
			_, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", Messages: []*brokerpb.MessageInput{{Body: big}}})
			return err
		}, codes.InvalidArgument, ReasonMessageTooLarge},
		{"empty batch", func() error {
			_, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1"})
			return err
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"missing topic config", func() error {
			_, err := c.CreateTopic(ctx, &brokerpb.CreateTopicRequest{})
			return err
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"topic exists", func() error {
			_, err := c.CreateTopic(ctx, &brokerpb.CreateTopicRequest{Topic: &brokerpb.TopicConfig{Name: "t1", Queues: 1}})
			return err
		}, codes.AlreadyExists, ReasonTopicExists},
		{"unknown id", func() error {
			_, err := c.LookupByID(ctx, &brokerpb.LookupByIDRequest{Id: "nope"})
			return err
		}, codes.NotFound, ReasonNotFound},
		{"negative wait", func() error {
			_, err := c.Pull(ctx, &brokerpb.PullRequest{Topic: "t1", WaitMillis: -1})
			return err
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"bad group", func() error {
			_, err := c.CommitOffset(ctx, &brokerpb.CommitOffsetRequest{Group: "", Topic: "t1"})
			return err
		}, codes.InvalidArgument, ReasonInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || rpcerr.Reason(err) != tt.reason {
				t.Fatalf("got %v / %q, want %v / %q (err %v)", status.Code(err), rpcerr.Reason(err), tt.code, tt.reason, err)
			}
			if msg := status.Convert(err).Message(); len(msg) < 10 {
				t.Fatalf("unhelpful message %q", msg)
			}
		})
	}
	if _, err := c.SetPermission(ctx, &brokerpb.SetPermissionRequest{Permission: brokerpb.Permission_PERMISSION_READ}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Send(ctx, &brokerpb.SendRequest{Topic: "t1", Messages: []*brokerpb.MessageInput{{Body: []byte("x")}}})
	if status.Code(err) != codes.FailedPrecondition || rpcerr.Reason(err) != ReasonWriteForbidden || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("write to read-only broker: %v", err)
	}
	info, err := c.GetBrokerInfo(ctx, &brokerpb.GetBrokerInfoRequest{})
	if err != nil || info.Permission != brokerpb.Permission_PERMISSION_READ {
		t.Fatalf("info %v %v", info, err)
	}
}
