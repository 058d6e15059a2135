package client

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/duomq/duomq/api/proxypb"
)

// ConsumeFrom is where a group with no committed offset starts reading.
type ConsumeFrom struct {
	where proxypb.ConsumeFrom
	at    time.Time
}

var (
	// ConsumeFromLatest starts at the end of the queues (the default).
	ConsumeFromLatest = ConsumeFrom{where: proxypb.ConsumeFrom_CONSUME_FROM_LATEST}
	// ConsumeFromEarliest starts at the oldest retained message.
	ConsumeFromEarliest = ConsumeFrom{where: proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST}
)

// ConsumeFromTime starts at the first message stored at or after t.
func ConsumeFromTime(t time.Time) ConsumeFrom {
	return ConsumeFrom{where: proxypb.ConsumeFrom_CONSUME_FROM_TIMESTAMP, at: t}
}

// ParseConsumeFrom reads "latest", "earliest" or an RFC 3339 time.
func ParseConsumeFrom(s string) (ConsumeFrom, error) {
	switch strings.ToLower(s) {
	case "", "latest":
		return ConsumeFromLatest, nil
	case "earliest":
		return ConsumeFromEarliest, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ConsumeFrom{}, fmt.Errorf("consume from %q: use latest, earliest or an RFC 3339 time", s)
	}
	return ConsumeFromTime(t), nil
}

func (f ConsumeFrom) String() string {
	switch f.where {
	case proxypb.ConsumeFrom_CONSUME_FROM_EARLIEST:
		return "earliest"
	case proxypb.ConsumeFrom_CONSUME_FROM_TIMESTAMP:
		return f.at.Format(time.RFC3339Nano)
	}
	return "latest"
}

// ConsumerOption tunes a consumer.
type ConsumerOption func(*consumerConfig)

type consumerConfig struct {
	from      ConsumeFrom
	wait      time.Duration
	invisible time.Duration
	batch     int
	drain     time.Duration
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{from: ConsumeFromLatest, wait: 2 * time.Second, invisible: 30 * time.Second, batch: 32, drain: 30 * time.Second}
}

// WithConsumeFrom sets where a group with no committed offset starts.
func WithConsumeFrom(f ConsumeFrom) ConsumerOption { return func(c *consumerConfig) { c.from = f } }

// WithReceiveWait sets how long a receive waits for messages when there
// are none (long polling); default 2 s.
func WithReceiveWait(d time.Duration) ConsumerOption { return func(c *consumerConfig) { c.wait = d } }

// WithInvisibleDuration sets how long a push consumer's message stays
// invisible to other consumers while its handler runs (extended while the
// handler is still running); default 30 s.
func WithInvisibleDuration(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.invisible = d }
}

// WithBatchSize caps the messages of one receive of a push consumer;
// default 32.
func WithBatchSize(n int) ConsumerOption { return func(c *consumerConfig) { c.batch = n } }

// WithDrainTimeout bounds how long a push consumer's Close waits for
// running handlers before cancelling their context; default 30 s.
func WithDrainTimeout(d time.Duration) ConsumerOption { return func(c *consumerConfig) { c.drain = d } }

func (c *consumerConfig) validate() error {
	switch {
	case c.wait < 0:
		return fmt.Errorf("client: receive wait must not be negative")
	case c.invisible < time.Second:
		return fmt.Errorf("client: invisible duration must be at least 1s")
	case c.batch < 1:
		return fmt.Errorf("client: batch size must be at least 1")
	case c.drain < 0:
		return fmt.Errorf("client: drain timeout must not be negative")
	}
	return nil
}

// SimpleConsumer receives messages on request and leaves acking to the
// caller: a message not acked within its invisible duration is delivered
// again (to any consumer of the group) with its reconsume count raised.
type SimpleConsumer struct {
	c                   *Client
	group, topic, where string
	cfg                 consumerConfig

	mu     sync.Mutex
	closed bool
}

// NewSimpleConsumer makes a consumer of group's subscription to topic,
// filtered by tagExpr: "*" for every tag, "a || b", or "" for the tags of
// the group's subscription in the metadata.
func (c *Client) NewSimpleConsumer(group, topic, tagExpr string, opts ...ConsumerOption) (*SimpleConsumer, error) {
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if group == "" || topic == "" {
		return nil, fmt.Errorf("client: a consumer needs a group and a topic")
	}
	c.register("", group)
	return &SimpleConsumer{c: c, group: group, topic: topic, where: tagExpr, cfg: cfg}, nil
}

// Receive returns up to maxMessages messages, waiting up to the receive wait (and
// never past ctx's deadline) when none is available; an empty slice is no
// error. Each message is invisible to other consumers for invisible.
func (s *SimpleConsumer) Receive(ctx context.Context, maxMessages int, invisible time.Duration) ([]*MessageView, error) {
	op := fmt.Sprintf("receive %s/%s", s.group, s.topic)
	if s.isClosed() {
		return nil, &Error{Op: op, Message: ErrClosed.Error(), kind: ErrClosed}
	}
	wait := s.cfg.wait
	if dl, ok := ctx.Deadline(); ok {
		wait = max(0, min(wait, time.Until(dl)-s.c.cfg.RequestTimeout/10))
	}
	req := &proxypb.ReceiveRequest{
		Group: s.group, Topic: s.topic, MaxMessages: int32(maxMessages), InvisibleMillis: invisible.Milliseconds(),
		WaitMillis: wait.Milliseconds(), TagExpression: s.where, ClientId: s.c.id, ConsumeFrom: s.cfg.from.where,
	}
	if !s.cfg.from.at.IsZero() {
		req.ConsumeFromTimeUnixNano = s.cfg.from.at.UnixNano()
	}
	var resp *proxypb.ReceiveResponse
	err := s.c.call(ctx, op, wait+s.c.cfg.RequestTimeout, func(ctx context.Context) error {
		var err error
		resp, err = s.c.api.Receive(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.views(ctx, resp.GetMessages()), nil
}

// views converts received messages; one whose body cannot be decompressed
// is handed back for redelivery (and so reaches the dead letters after the
// group's retries) instead of being delivered corrupt.
func (s *SimpleConsumer) views(ctx context.Context, ms []*proxypb.ReceivedMessage) []*MessageView {
	out := make([]*MessageView, 0, len(ms))
	for _, rm := range ms {
		v, err := viewFromPB(rm.GetMessage())
		v.receipt, v.Attempt = rm.GetReceiptHandle(), rm.GetAttempt()
		v.InvisibleUntil = unixNano(rm.GetInvisibleUntilUnixNano())
		if err != nil {
			s.c.log.Error("undecodable message body; returning it", "topic", v.Topic, "id", v.ID, "err", err)
			if err := s.ChangeInvisibleDuration(ctx, v, 0); err != nil {
				s.c.log.Warn("returning a message failed", "id", v.ID, "err", err)
			}
			continue
		}
		out = append(out, v)
	}
	return out
}

// Ack settles a received message: it is not delivered again.
func (s *SimpleConsumer) Ack(ctx context.Context, m *MessageView) error {
	op := fmt.Sprintf("ack %s/%s %s", s.group, s.topic, m.ID)
	req := &proxypb.AckRequest{Group: s.group, Topic: s.topic, ReceiptHandle: m.receipt, ClientId: s.c.id}
	return s.c.call(ctx, op, s.c.cfg.RequestTimeout, func(ctx context.Context) error {
		_, err := s.c.api.Ack(ctx, req)
		return err
	})
}

// ChangeInvisibleDuration makes m invisible for d from now; 0 hands it
// back for redelivery with backoff (a negative acknowledgement). m takes
// the new receipt handle, so do not change the same message concurrently.
func (s *SimpleConsumer) ChangeInvisibleDuration(ctx context.Context, m *MessageView, d time.Duration) error {
	op := fmt.Sprintf("change invisible duration %s/%s %s", s.group, s.topic, m.ID)
	if d < 0 {
		return &Error{Op: op, Code: codes.InvalidArgument, Message: "negative duration", kind: ErrInvalidArgument}
	}
	req := &proxypb.ChangeInvisibleDurationRequest{Group: s.group, Topic: s.topic, ReceiptHandle: m.receipt,
		InvisibleMillis: d.Milliseconds(), ClientId: s.c.id}
	var resp *proxypb.ChangeInvisibleDurationResponse
	err := s.c.call(ctx, op, s.c.cfg.RequestTimeout, func(ctx context.Context) error {
		var err error
		resp, err = s.c.api.ChangeInvisibleDuration(ctx, req)
		return err
	})
	if err != nil {
		return err
	}
	if h := resp.GetReceiptHandle(); h != "" {
		m.receipt = h
	}
	m.InvisibleUntil = time.Now().Add(d)
	return nil
}

// Close makes later calls fail with ErrClosed. Safe to call twice.
func (s *SimpleConsumer) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *SimpleConsumer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
