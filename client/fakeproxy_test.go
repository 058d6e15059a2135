package client

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/internal/rpcerr"
)

// fakeProxy is an in-memory proxy: one queue per topic, message-level
// consumption with invisibility, idempotent sends, and hooks to fail calls.
// It tests the SDK's wiring; the real proxy is tested in integration.
type fakeProxy struct {
	proxypb.UnimplementedProxyServer
	dc   string
	cidr map[string]string // address -> IDC for ResolveIDC

	mu         sync.Mutex
	stored     map[string][]*fakeMsg // topic -> log
	ids        map[string]*proxypb.SendResult
	sends      []*proxypb.SendRequest
	heartbeats []*proxypb.ClientInfo
	metadata   []metadata.MD
	handles    int
	// failSend, when set, is called with the 1-based number of the Send
	// call; a non-nil error is returned after storing (stored=true) or
	// before.
	failSend func(n int) (err error, afterStore bool)
}

type fakeMsg struct {
	pb         *proxypb.Message
	acked      bool
	deliveries int
	invisible  time.Time
	handle     string
}

func newFakeProxy(t *testing.T, dc string) (*fakeProxy, string) {
	t.Helper()
	f := &fakeProxy{dc: dc, cidr: map[string]string{}, stored: map[string][]*fakeMsg{}, ids: map[string]*proxypb.SendResult{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		md = md.Copy()
		md.Set(":method", info.FullMethod)
		f.mu.Lock()
		f.metadata = append(f.metadata, md)
		f.mu.Unlock()
		return h(ctx, req)
	}))
	proxypb.RegisterProxyServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func (f *fakeProxy) Send(_ context.Context, req *proxypb.SendRequest) (*proxypb.SendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, req)
	var ferr error
	after := false
	if f.failSend != nil {
		ferr, after = f.failSend(len(f.sends))
	}
	if ferr != nil && !after {
		return nil, ferr
	}
	if _, ok := f.stored[req.Topic]; !ok && req.Topic != "t" && req.Topic != "t2" {
		return nil, rpcerr.New(codes.NotFound, "TOPIC_NOT_FOUND", fmt.Sprintf("topic %q does not exist", req.Topic))
	}
	resp := &proxypb.SendResponse{}
	for _, m := range req.Messages {
		if r, ok := f.ids[m.Id]; ok && req.Idempotent {
			d := proto.Clone(r).(*proxypb.SendResult)
			d.Duplicate = true
			resp.Results = append(resp.Results, d)
			continue
		}
		m.Topic, m.Dc = req.Topic, f.dc
		m.Offset = int64(len(f.stored[req.Topic]))
		f.stored[req.Topic] = append(f.stored[req.Topic], &fakeMsg{pb: m})
		r := &proxypb.SendResult{Id: m.Id, Topic: req.Topic, Dc: f.dc, Offset: m.Offset}
		f.ids[m.Id] = r
		resp.Results = append(resp.Results, r)
	}
	return resp, ferr
}

func (f *fakeProxy) Receive(ctx context.Context, req *proxypb.ReceiveRequest) (*proxypb.ReceiveResponse, error) {
	deadline := time.Now().Add(time.Duration(req.WaitMillis) * time.Millisecond)
	for {
		if out := f.take(req); len(out) > 0 || time.Now().After(deadline) {
			return &proxypb.ReceiveResponse{Messages: out}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (f *fakeProxy) take(req *proxypb.ReceiveRequest) []*proxypb.ReceivedMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*proxypb.ReceivedMessage
	now := time.Now()
	for _, m := range f.stored[req.Topic] {
		if len(out) == int(req.MaxMessages) {
			break
		}
		if m.acked || now.Before(m.invisible) {
			continue
		}
		f.handles++
		m.handle = strconv.Itoa(f.handles)
		m.invisible = now.Add(time.Duration(req.InvisibleMillis) * time.Millisecond)
		m.deliveries++
		m.pb.ReconsumeTimes = int32(m.deliveries - 1)
		out = append(out, &proxypb.ReceivedMessage{Message: proto.Clone(m.pb).(*proxypb.Message), ReceiptHandle: m.handle, Attempt: int32(m.deliveries)})
	}
	return out
}

func (f *fakeProxy) find(handle string) *fakeMsg {
	for _, log := range f.stored {
		for _, m := range log {
			if m.handle == handle && !m.acked {
				return m
			}
		}
	}
	return nil
}

func (f *fakeProxy) Ack(_ context.Context, req *proxypb.AckRequest) (*proxypb.AckResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.find(req.ReceiptHandle)
	if m == nil {
		return nil, rpcerr.New(codes.InvalidArgument, "INVALID_RECEIPT_HANDLE", "unknown handle")
	}
	m.acked = true
	return &proxypb.AckResponse{}, nil
}

func (f *fakeProxy) ChangeInvisibleDuration(_ context.Context, req *proxypb.ChangeInvisibleDurationRequest) (*proxypb.ChangeInvisibleDurationResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.find(req.ReceiptHandle)
	if m == nil {
		return nil, rpcerr.New(codes.InvalidArgument, "INVALID_RECEIPT_HANDLE", "unknown handle")
	}
	m.invisible = time.Now().Add(time.Duration(req.InvisibleMillis) * time.Millisecond)
	f.handles++
	m.handle = strconv.Itoa(f.handles)
	return &proxypb.ChangeInvisibleDurationResponse{ReceiptHandle: m.handle}, nil
}

func (f *fakeProxy) Heartbeat(_ context.Context, req *proxypb.HeartbeatRequest) (*proxypb.HeartbeatResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heartbeats = append(f.heartbeats, req.Client)
	return &proxypb.HeartbeatResponse{Dc: f.dc}, nil
}

func (f *fakeProxy) ResolveIDC(_ context.Context, req *proxypb.ResolveIDCRequest) (*proxypb.ResolveIDCResponse, error) {
	for _, a := range req.Addresses {
		if idc, ok := f.cidr[a]; ok {
			return &proxypb.ResolveIDCResponse{Idc: idc, MatchedAddress: a}, nil
		}
	}
	return &proxypb.ResolveIDCResponse{}, nil
}

func (f *fakeProxy) lastHeartbeat() *proxypb.ClientInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.heartbeats) == 0 {
		return nil
	}
	return f.heartbeats[len(f.heartbeats)-1]
}

func (f *fakeProxy) storedCount(topic string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored[topic])
}

// testConfig is a client configuration for tests: no host files, fast
// retries and heartbeats.
func testConfig(proxy string) Config {
	cfg := DefaultConfig()
	cfg.Proxy = proxy
	cfg.App = "test-app"
	cfg.IDC.Sources = []string{SourceDefault}
	cfg.IDC.Default = "idc-a"
	cfg.Retry = fastPolicy(4)
	cfg.RequestTimeout = 2 * time.Second
	cfg.HeartbeatInterval = 50 * time.Millisecond
	return cfg
}

func newTestClient(t *testing.T, cfg Config, opts ...Option) *Client {
	t.Helper()
	c, err := New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
