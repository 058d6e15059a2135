package proxybench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/clusterfile"
)

// Target is a DC of a running cluster with a scratch topic and group.
type Target struct {
	DC     string
	px     proxypb.ProxyClient
	bc     brokerpb.BrokerClient
	store  *meta.Store
	closer []func() error
	topic  string
	group  string
}

// Open connects to dc's proxy and first broker and creates a scratch
// topic and group (removed by Close).
func Open(ctx context.Context, f clusterfile.File, dc string) (*Target, error) {
	site, err := f.Site(dc)
	if err != nil {
		return nil, err
	}
	if site.Proxy == "" || len(site.Brokers) == 0 {
		return nil, fmt.Errorf("site %s has no proxy or broker in the cluster file", dc)
	}
	t := &Target{DC: dc}
	pc, err := dialGRPC(site.Proxy)
	if err != nil {
		return nil, err
	}
	bc, err := dialGRPC(site.Brokers[0])
	if err != nil {
		pc.Close()
		return nil, err
	}
	cli, err := meta.NewClient(f.EtcdEndpoints())
	if err != nil {
		pc.Close()
		bc.Close()
		return nil, err
	}
	t.px, t.bc, t.store = proxypb.NewProxyClient(pc), brokerpb.NewBrokerClient(bc), meta.New(cli, meta.Options{})
	t.closer = []func() error{pc.Close, bc.Close, cli.Close}
	return t, t.setup(ctx)
}

func dialGRPC(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
}

func (t *Target) setup(ctx context.Context) error {
	suffix := fmt.Sprint(time.Now().UnixNano())
	t.topic, t.group = "bench-"+suffix, "bench-"+suffix
	if _, err := t.store.CreateTopic(ctx, meta.Topic{Name: t.topic, Queues: 8}); err != nil {
		return err
	}
	if err := t.createGroup(ctx, t.group); err != nil {
		return err
	}
	// Routes reach the proxy with the brokers' next heartbeat.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, perr := t.px.Send(ctx, &proxypb.SendRequest{Topic: t.topic, Messages: []*proxypb.Message{{Body: []byte("warm-up")}}})
		_, berr := t.bc.Send(ctx, &brokerpb.SendRequest{Topic: t.topic, QueueId: -1, Messages: []*brokerpb.MessageInput{{Body: []byte("warm-up")}}})
		if perr == nil && berr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("scratch topic %s not writable: %w", t.topic, errors.Join(perr, berr))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Close removes the scratch group and topic and closes the connections.
func (t *Target) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if t.group != "" {
		_, err := t.store.DeleteGroup(ctx, t.group)
		errs = append(errs, err)
	}
	if t.topic != "" {
		_, err := t.store.DeleteTopic(ctx, t.topic)
		errs = append(errs, err)
	}
	for _, c := range t.closer {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func (t *Target) sendProxy(body []byte) op {
	return func(ctx context.Context) error {
		_, err := t.px.Send(ctx, &proxypb.SendRequest{Topic: t.topic, Messages: []*proxypb.Message{{Body: body}}})
		return err
	}
}

func (t *Target) sendDirect(body []byte) op {
	return func(ctx context.Context) error {
		_, err := t.bc.Send(ctx, &brokerpb.SendRequest{Topic: t.topic, QueueId: -1, Messages: []*brokerpb.MessageInput{{Body: body}}})
		return err
	}
}

// createGroup creates a group and waits until the proxy knows it (its
// metadata cache follows etcd by a watch): a read-only call that names the
// group answers NOT_FOUND until then.
func (t *Target) createGroup(ctx context.Context, group string) error {
	if _, err := t.store.CreateGroup(ctx, meta.Group{Name: group}); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := t.px.ListDeadLetters(ctx, &proxypb.ListDeadLettersRequest{Group: group, MaxMessages: 1})
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Produce measures sends of one message.
func (t *Target) Produce(ctx context.Context, o Options) (Result, error) {
	r := newResult("produce", t.DC, o)
	body := make([]byte, o.MessageSize)
	var err error
	r.Proxy, r.Broker, err = measurePair(ctx, o, t.sendProxy(body), t.sendDirect(body))
	r.finish()
	return r, err
}

// Consume measures receive+ack of up to 32 messages a call over a
// backlog written first: via the proxy (which pops every broker of the
// DC) and by popping one broker directly with another group.
func (t *Target) Consume(ctx context.Context, o Options) (Result, error) {
	r := newResult("consume", t.DC, o)
	if err := t.prefill(ctx, o); err != nil {
		return r, err
	}
	direct := "bench-direct-" + fmt.Sprint(time.Now().UnixNano())
	if err := t.createGroup(ctx, direct); err != nil {
		return r, err
	}
	defer t.store.DeleteGroup(context.Background(), direct)
	var n atomic.Int64
	viaProxy := func(ctx context.Context) error {
		res, err := t.px.Receive(ctx, &proxypb.ReceiveRequest{Group: t.group, Topic: t.topic, MaxMessages: 32, ConsumeFrom: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST})
		if err != nil {
			return err
		}
		for _, m := range res.Messages {
			if _, err := t.px.Ack(ctx, &proxypb.AckRequest{Group: t.group, Topic: t.topic, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
		}
		n.Add(int64(len(res.Messages)))
		return nil
	}
	var nd atomic.Int64
	viaBroker := func(ctx context.Context) error {
		res, err := t.bc.Pop(ctx, &brokerpb.PopRequest{Group: direct, Topic: t.topic, QueueId: -1, MaxMessages: 32, InitialPosition: brokerpb.InitialPosition_INITIAL_POSITION_EARLIEST})
		if err != nil {
			return err
		}
		for _, m := range res.Messages {
			if _, err := t.bc.Ack(ctx, &brokerpb.AckRequest{Group: direct, Topic: t.topic, ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
		}
		nd.Add(int64(len(res.Messages)))
		return nil
	}
	r.Proxy.AtLoad, r.Proxy.Errors, r.Proxy.MaxMsgPerSec = timedCalls(ctx, o, viaProxy, &n)
	r.Broker.AtLoad, r.Broker.Errors, r.Broker.MaxMsgPerSec = timedCalls(ctx, o, viaBroker, &nd)
	r.finish()
	return r, nil
}

// timedCalls runs f closed-loop and returns per-call latency, errors and
// messages per second (counted by f into n).
func timedCalls(ctx context.Context, o Options, f op, n *atomic.Int64) (Latency, int64, float64) {
	var mu sync.Mutex
	var lats []time.Duration
	timed := func(ctx context.Context) error {
		t0 := time.Now()
		err := f(ctx)
		mu.Lock()
		lats = append(lats, time.Since(t0))
		mu.Unlock()
		return err
	}
	start := time.Now()
	_, errs := closedLoop(ctx, o.Workers, o.Duration, timed)
	return summarize(lats), errs, float64(n.Load()) / time.Since(start).Seconds()
}

// prefill writes a backlog larger than one measurement can drain.
func (t *Target) prefill(ctx context.Context, o Options) error {
	body := make([]byte, o.MessageSize)
	batch := make([]*proxypb.Message, 100)
	for i := range batch {
		batch[i] = &proxypb.Message{Body: body}
	}
	want := int(o.Duration.Seconds()*20000) + 1000
	for sent := 0; sent < want; sent += len(batch) {
		if _, err := t.px.Send(ctx, &proxypb.SendRequest{Topic: t.topic, Messages: batch}); err != nil {
			return fmt.Errorf("prefill: %w", err)
		}
	}
	return nil
}

// E2E measures the time from a send's start to the message's delivery
// to a long-polling consumer, at LoadFraction of the proxy's produce max:
// through the proxy, and through one broker directly.
func (t *Target) E2E(ctx context.Context, o Options) (Result, error) {
	r := newResult("e2e", t.DC, o)
	body := make([]byte, max(o.MessageSize, 8))
	max, _ := closedLoop(ctx, o.Workers, o.Duration/2, t.sendProxy(body))
	load := max * o.LoadFraction
	r.Proxy.MaxMsgPerSec, r.Proxy.OfferedMsgPerSec, r.Broker.OfferedMsgPerSec = max, load, load
	lat, err := t.e2eProxy(ctx, o, load)
	if err != nil {
		return r, err
	}
	r.E2E = &lat
	r.Proxy.AtLoad = lat
	r.Broker.AtLoad, err = t.e2eBroker(ctx, o, load)
	r.finish()
	return r, err
}

// stamped returns a send op whose body starts with the send time.
func stamped(size int, send func(ctx context.Context, body []byte) error) op {
	return func(ctx context.Context) error {
		b := make([]byte, size)
		binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		return send(ctx, b)
	}
}

func (t *Target) e2eProxy(ctx context.Context, o Options, load float64) (Latency, error) {
	group := "bench-e2e-" + fmt.Sprint(time.Now().UnixNano())
	if err := t.createGroup(ctx, group); err != nil {
		return Latency{}, err
	}
	defer t.store.DeleteGroup(context.Background(), group)
	recv := func(ctx context.Context) ([][]byte, error) {
		res, err := t.px.Receive(ctx, &proxypb.ReceiveRequest{Group: group, Topic: t.topic, MaxMessages: 32, WaitMillis: 200})
		if err != nil {
			return nil, err
		}
		out := make([][]byte, len(res.Messages))
		handles := make([]string, len(res.Messages))
		for i, m := range res.Messages {
			out[i], handles[i] = m.Message.Body, m.ReceiptHandle
		}
		ackAll(handles, func(h string) {
			t.px.Ack(context.Background(), &proxypb.AckRequest{Group: group, Topic: t.topic, ReceiptHandle: h})
		})
		return out, nil
	}
	send := stamped(max(o.MessageSize, 8), func(ctx context.Context, b []byte) error {
		_, err := t.px.Send(ctx, &proxypb.SendRequest{Topic: t.topic, Messages: []*proxypb.Message{{Body: b}}})
		return err
	})
	return e2e(ctx, o, load, send, recv)
}

func (t *Target) e2eBroker(ctx context.Context, o Options, load float64) (Latency, error) {
	group := "bench-e2e-direct-" + fmt.Sprint(time.Now().UnixNano())
	recv := func(ctx context.Context) ([][]byte, error) {
		res, err := t.bc.Pop(ctx, &brokerpb.PopRequest{Group: group, Topic: t.topic, QueueId: -1, MaxMessages: 32, WaitMillis: 200})
		if err != nil {
			return nil, err
		}
		out := make([][]byte, len(res.Messages))
		handles := make([]string, len(res.Messages))
		for i, m := range res.Messages {
			out[i], handles[i] = m.Message.Body, m.ReceiptHandle
		}
		ackAll(handles, func(h string) {
			t.bc.Ack(context.Background(), &brokerpb.AckRequest{Group: group, Topic: t.topic, ReceiptHandle: h})
		})
		return out, nil
	}
	send := stamped(max(o.MessageSize, 8), func(ctx context.Context, b []byte) error {
		_, err := t.bc.Send(ctx, &brokerpb.SendRequest{Topic: t.topic, QueueId: -1, Messages: []*brokerpb.MessageInput{{Body: b}}})
		return err
	})
	return e2e(ctx, o, load, send, recv)
}

// ackAll acks a batch concurrently (after the deliveries were timed), as a
// consumer with a worker pool would.
func ackAll(handles []string, ack func(string)) {
	var wg sync.WaitGroup
	for _, h := range handles {
		wg.Go(func() { ack(h) })
	}
	wg.Wait()
}

// e2e offers load with send while consumers (started first, positioned at
// the end of the topic) record each delivery's age.
func e2e(ctx context.Context, o Options, load float64, send op, recv func(context.Context) ([][]byte, error)) (Latency, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, err := recv(cctx); err != nil { // registers the group at the latest offset
		return Latency{}, err
	}
	var mu sync.Mutex
	var ages []time.Duration
	var wg sync.WaitGroup
	since := time.Now().UnixNano() // older bodies (warm-up, earlier runs) are not counted
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				bodies, _ := recv(cctx)
				now := time.Now()
				mu.Lock()
				for _, b := range bodies {
					if len(b) >= 8 {
						if sent := int64(binary.BigEndian.Uint64(b)); sent >= since && sent <= now.UnixNano() {
							ages = append(ages, now.Sub(time.Unix(0, sent)))
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	openLoop(ctx, o.Workers, load, o.Duration, send)
	time.Sleep(500 * time.Millisecond) // let the last deliveries arrive
	cancel()
	wg.Wait()
	return summarize(ages), nil
}
