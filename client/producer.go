package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/internal/msgid"
)

// Producer sends messages through its client's proxy. Every send is
// idempotent: a message gets its id before the first attempt, so a retried
// send is stored once. Safe for concurrent use.
type Producer struct {
	c     *Client
	async sync.WaitGroup
	slots chan struct{}

	mu     sync.RWMutex
	closed bool
}

// NewProducer makes a producer; close it to wait for its SendAsync calls.
func (c *Client) NewProducer() *Producer {
	c.register("", "")
	return &Producer{c: c, slots: make(chan struct{}, c.cfg.MaxAsyncSends)}
}

// Send stores one message and returns where. An ordered send is a message
// with a ShardingKey on an ordered topic: sends with the same key, made one
// after the other, are delivered in that order. m.ID is filled in when empty.
func (p *Producer) Send(ctx context.Context, m *Message) (SendReceipt, error) {
	rs, err := p.send(ctx, m.Topic, []*Message{m})
	if err != nil {
		return SendReceipt{}, err
	}
	return rs[0], nil
}

// MaxBatch is the most messages one request carries (the proxy's default
// limit); SendBatch splits larger batches.
const MaxBatch = 1024

// SendBatch stores messages, one request per topic and per MaxBatch
// messages, and returns their receipts in the order of msgs. On an error
// the receipts of the requests already stored are filled in and the rest
// are zero.
func (p *Producer) SendBatch(ctx context.Context, msgs []*Message) ([]SendReceipt, error) {
	out := make([]SendReceipt, len(msgs))
	var order []string
	byTopic := map[string][]int{}
	for i, m := range msgs {
		if _, ok := byTopic[m.Topic]; !ok {
			order = append(order, m.Topic)
		}
		byTopic[m.Topic] = append(byTopic[m.Topic], i)
	}
	for _, topic := range order {
		all := byTopic[topic]
		for len(all) > 0 {
			idx := all[:min(len(all), MaxBatch)]
			all = all[len(idx):]
			if err := p.sendChunk(ctx, topic, msgs, idx, out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// sendChunk sends msgs[idx...] of one topic as one request and fills
// their receipts into out.
func (p *Producer) sendChunk(ctx context.Context, topic string, msgs []*Message, idx []int, out []SendReceipt) error {
	batch := make([]*Message, len(idx))
	for j, i := range idx {
		batch[j] = msgs[i]
	}
	rs, err := p.send(ctx, topic, batch)
	if err != nil {
		return err
	}
	for j, i := range idx {
		out[i] = rs[j]
	}
	return nil
}

// SendAsync sends m in the background and calls done with the outcome
// (from another goroutine). It blocks while Config.MaxAsyncSends sends are
// in flight. Sends with no ordering between them: use Send for order.
func (p *Producer) SendAsync(ctx context.Context, m *Message, done func(SendReceipt, error)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		done(SendReceipt{}, &Error{Op: "send to " + m.Topic, Message: ErrClosed.Error(), kind: ErrClosed})
		return
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		done(SendReceipt{}, wrapErr("send to "+m.Topic, ctx.Err()))
		return
	}
	if m.ID == "" {
		m.ID = msgid.New()
	}
	p.async.Add(1)
	go func() {
		defer p.async.Done()
		r, err := p.Send(ctx, m)
		<-p.slots
		done(r, err)
	}()
}

// Close waits for the SendAsync calls in flight; later sends fail with
// ErrClosed. Safe to call twice.
func (p *Producer) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.async.Wait()
	return nil
}

func (p *Producer) send(ctx context.Context, topic string, msgs []*Message) ([]SendReceipt, error) {
	op := "send to " + topic
	if len(msgs) == 0 {
		return nil, &Error{Op: op, Code: codes.InvalidArgument, Message: "no messages", kind: ErrInvalidArgument}
	}
	req, err := p.request(op, topic, msgs)
	if err != nil {
		return nil, err
	}
	p.c.register(topic, "")
	var resp *proxypb.SendResponse
	err = p.c.call(ctx, op, p.c.cfg.RequestTimeout, func(ctx context.Context) error {
		var err error
		resp, err = p.c.api.Send(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(resp.GetResults()) != len(msgs) {
		return nil, &Error{Op: op, Code: codes.Internal,
			Message: fmt.Sprintf("proxy answered %d results for %d messages", len(resp.GetResults()), len(msgs)), kind: ErrServer}
	}
	out := make([]SendReceipt, len(msgs))
	for i, r := range resp.GetResults() {
		out[i] = receiptFromPB(r)
	}
	return out, nil
}

// request checks msgs, gives each an id and builds the wire request.
func (p *Producer) request(op, topic string, msgs []*Message) (*proxypb.SendRequest, error) {
	if topic == "" {
		return nil, &Error{Op: op, Code: codes.InvalidArgument, Message: "message without topic", kind: ErrInvalidArgument}
	}
	req := &proxypb.SendRequest{Topic: topic, ClientId: p.c.id, Idempotent: true, Messages: make([]*proxypb.Message, len(msgs))}
	idc, now := p.c.IDC(), time.Now()
	for i, m := range msgs {
		if limit := p.c.cfg.MaxMessageBytes; limit > 0 && len(m.Body) > limit {
			return nil, &Error{Op: op, Code: codes.InvalidArgument, Reason: "MESSAGE_TOO_LARGE",
				Message: fmt.Sprintf("message body of %d bytes is over the limit of %d bytes (max-message-bytes)", len(m.Body), limit),
				kind:    ErrMessageTooLarge}
		}
		if m.ID == "" {
			m.ID = msgid.New()
		}
		req.Messages[i] = m.toPB(idc, p.c.cfg.CompressThreshold, now)
	}
	return req, nil
}
