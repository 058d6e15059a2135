package client

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Handler processes one message. Returning nil acks it; an error (or a
// panic) hands it back for redelivery with backoff, until the group's
// retries are spent and it goes to the dead letters.
type Handler func(ctx context.Context, m *MessageView) error

// PushConsumer receives messages in the background and runs a handler on
// each, at most concurrency at a time. Close stops receiving and waits for
// running handlers.
type PushConsumer struct {
	sc    *SimpleConsumer
	h     Handler
	slots chan struct{}

	stop      chan struct{}
	loopDone  chan struct{}
	runCtx    context.Context
	cancelRun context.CancelFunc
	inflight  sync.WaitGroup
	closeOnce sync.Once
}

// NewPushConsumer starts consuming group's subscription to topic, filtered
// by tagExpr, with up to concurrency handlers running at once.
func (c *Client) NewPushConsumer(group, topic, tagExpr string, h Handler, concurrency int, opts ...ConsumerOption) (*PushConsumer, error) {
	if h == nil || concurrency < 1 {
		return nil, fmt.Errorf("client: a push consumer needs a handler and a concurrency of at least 1")
	}
	sc, err := c.NewSimpleConsumer(group, topic, tagExpr, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &PushConsumer{
		sc: sc, h: h, slots: make(chan struct{}, concurrency),
		stop: make(chan struct{}), loopDone: make(chan struct{}), runCtx: ctx, cancelRun: cancel,
	}
	go p.loop()
	return p, nil
}

func (p *PushConsumer) loop() {
	defer close(p.loopDone)
	failures := 0
	for {
		n, ok := p.acquire()
		if !ok {
			return
		}
		msgs, err := p.sc.Receive(p.runCtx, n, p.sc.cfg.invisible)
		for range n - len(msgs) {
			<-p.slots
		}
		if err != nil {
			failures++
			p.sc.c.log.Warn("receive failed", "group", p.sc.group, "topic", p.sc.topic, "err", err)
			select {
			case <-p.stop:
				return
			case <-time.After(p.sc.c.cfg.Retry.backoff(min(failures, 10))):
			}
			continue
		}
		failures = 0
		for _, m := range msgs {
			p.inflight.Add(1)
			go p.handle(m)
		}
	}
}

// acquire waits for a free handler slot and takes as many more as are
// free, up to the batch size; false once the consumer stops.
func (p *PushConsumer) acquire() (int, bool) {
	select {
	case <-p.stop:
		return 0, false
	case p.slots <- struct{}{}:
	}
	n := 1
	for n < p.sc.cfg.batch {
		select {
		case p.slots <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

// handle runs the handler, extending the message's invisibility while it
// runs, then acks or hands the message back.
func (p *PushConsumer) handle(m *MessageView) {
	defer p.inflight.Done()
	defer func() { <-p.slots }()
	done := make(chan error, 1)
	go func() { done <- p.run(m) }()
	inv := p.sc.cfg.invisible
	renew := time.NewTimer(inv * 2 / 3)
	defer renew.Stop()
	for {
		select {
		case err := <-done:
			p.settle(m, err)
			return
		case <-renew.C:
			if err := p.sc.ChangeInvisibleDuration(context.Background(), m, inv); err != nil {
				p.sc.c.log.Warn("extending invisibility failed", "id", m.ID, "err", err)
			}
			renew.Reset(inv * 2 / 3)
		}
	}
}

func (p *PushConsumer) run(m *MessageView) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return p.h(p.runCtx, m)
}

func (p *PushConsumer) settle(m *MessageView, handlerErr error) {
	ctx := context.Background()
	if handlerErr == nil {
		if err := p.sc.Ack(ctx, m); err != nil {
			p.sc.c.log.Warn("ack failed", "id", m.ID, "err", err)
		}
		return
	}
	p.sc.c.log.Info("handler failed; message handed back", "id", m.ID, "reconsume", m.ReconsumeTimes, "err", handlerErr)
	if err := p.sc.ChangeInvisibleDuration(ctx, m, 0); err != nil {
		p.sc.c.log.Warn("handing a message back failed", "id", m.ID, "err", err)
	}
}

// Close stops receiving, lets running handlers finish (up to the drain
// timeout, after which their context is cancelled) and settles their
// messages. Safe to call twice.
func (p *PushConsumer) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		drained := make(chan struct{})
		go func() {
			<-p.loopDone
			p.inflight.Wait()
			close(drained)
		}()
		t := time.NewTimer(p.sc.cfg.drain)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
			p.cancelRun()
			<-drained
		}
		p.cancelRun()
		p.sc.Close()
	})
	return nil
}
