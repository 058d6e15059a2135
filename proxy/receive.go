package proxy

import (
	"context"
	"crypto/rand"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
	"github.com/duomq/duomq/internal/rpcerr"
)

// deadlineMargin is kept between a long poll's end and the client's
// deadline, so the answer reaches the client in time.
const deadlineMargin = 50 * time.Millisecond

// popTarget is one (broker, topic) a receive pops from.
type popTarget struct {
	b     brokerRef
	topic string
	tags  []string
	// queue+1 when the target is one queue (a mirror's queue on the
	// broker that holds it); 0: every queue of the topic on the broker.
	queue int32
}

// Receive pops up to max_messages for a group: first a sweep of every
// target without waiting, then, if that found nothing, a long poll of all
// targets at once that ends with the first answer.
func (p *Proxy) Receive(ctx context.Context, req *proxypb.ReceiveRequest) (*proxypb.ReceiveResponse, error) {
	g, t, err := p.groupTopic(req.GetGroup(), req.GetTopic())
	if err != nil {
		return nil, err
	}
	if g.Mode == meta.ModeBroadcast {
		return nil, errorf(ErrUnsupported, "group %q is a broadcast group: receive serves clustering groups (each message to one consumer)", g.Name)
	}
	if err := p.throttle.client(clientKey(ctx, req.GetClientId())); err != nil {
		p.metrics.throttled.WithLabelValues("client").Inc()
		return nil, err
	}
	base, limit, wait, err := p.popRequest(ctx, g, req)
	if err != nil {
		return nil, err
	}
	if p.clients.touchGroup(g.Name) {
		p.publishGroups()
	}
	targets := p.popTargets(ctx, g, t, tagList(req.GetTagExpression(), g, t.Name))
	var msgs []*proxypb.ReceivedMessage
	if len(targets) > 1 && limit >= len(targets) {
		msgs = p.popSweepParallel(ctx, targets, base, limit)
	} else {
		msgs = p.popSweep(ctx, g.Name, targets, base, limit)
	}
	if len(msgs) == 0 && wait > 0 {
		msgs = p.popLongPoll(ctx, targets, base, limit, wait)
	}
	if len(msgs) > 0 && ctx.Err() != nil {
		// The caller gave up (its deadline passed while the brokers
		// answered): the reply would be lost and the messages invisible
		// until their deadline. Hand them back for redelivery at once.
		p.handBack(req, msgs)
		return nil, ctx.Err()
	}
	now := p.now()
	for _, m := range msgs {
		msg := m.GetMessage()
		p.metrics.received.WithLabelValues(msg.GetTopic(), msg.GetDc()).Inc()
		if from := max(msg.GetStoreTimeUnixNano(), msg.GetDeliverAtUnixNano()); from > 0 {
			p.metrics.deliveryDelay.WithLabelValues(msg.GetTopic(), msg.GetDc()).Observe(max(0, now.Sub(time.Unix(0, from)).Seconds()))
		}
	}
	return &proxypb.ReceiveResponse{Messages: msgs}, nil
}

// handBack makes received messages whose caller is gone visible again,
// each with its own short deadline (the caller's has passed).
func (p *Proxy) handBack(req *proxypb.ReceiveRequest, msgs []*proxypb.ReceivedMessage) {
	for _, m := range msgs {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.BrokerTimeout)
		_, err := p.ChangeInvisibleDuration(ctx, &proxypb.ChangeInvisibleDurationRequest{
			Group: req.GetGroup(), Topic: req.GetTopic(), ReceiptHandle: m.GetReceiptHandle(), ClientId: req.GetClientId()})
		cancel()
		if err != nil {
			p.log.Warn("received message not handed back; it returns when its invisibility ends",
				"group", req.GetGroup(), "topic", req.GetTopic(), "id", m.GetMessage().GetId(), "err", err)
		}
	}
	p.metrics.handedBack.Add(float64(len(msgs)))
}

// groupTopic checks a group and a topic it consumes.
func (p *Proxy) groupTopic(group, topic string) (meta.Group, meta.Topic, error) {
	g, err := p.group(group)
	if err != nil {
		return g, meta.Topic{}, err
	}
	t, err := p.topic(topic)
	if err != nil {
		return g, t, err
	}
	// A group without subscriptions takes whatever topics its consumers
	// name (as a RocketMQ 5 group does); one with subscriptions is held to
	// them, so a typo in a consumer's topic is caught.
	if len(g.Subscriptions) > 0 && !slices.Contains(g.Topics(), t.Name) {
		return g, t, errorf(ErrNotSubscribed, "group %q does not subscribe to topic %q: add it with: duomq group update %s --topic %s (and its other topics: --topic replaces the subscriptions)",
			g.Name, t.Name, g.Name, t.Name)
	}
	return g, t, nil
}

func (p *Proxy) group(name string) (meta.Group, error) {
	if err := names.Group(name); err != nil {
		return meta.Group{}, errorf(ErrInvalidName, "%v", err)
	}
	g, ok := p.meta.Group(name)
	if !ok {
		return g, groupNotFound(name)
	}
	return g, nil
}

// popRequest builds the broker request shared by every target, and the
// receive's message budget and wait.
func (p *Proxy) popRequest(ctx context.Context, g meta.Group, req *proxypb.ReceiveRequest) (*brokerpb.PopRequest, int, time.Duration, error) {
	lim := p.cfg.Limits
	if req.GetMaxMessages() < 0 || req.GetInvisibleMillis() < 0 || req.GetWaitMillis() < 0 {
		return nil, 0, 0, errorf(ErrInvalidArgument, "receive: max_messages, invisible_millis and wait_millis must not be negative")
	}
	maxMsgs := min(max(int(req.GetMaxMessages()), 1), lim.MaxReceive)
	inv := time.Duration(req.GetInvisibleMillis()) * time.Millisecond
	if inv == 0 {
		inv = lim.DefaultInvisible
	}
	inv = min(inv, lim.MaxInvisible)
	wait := min(time.Duration(req.GetWaitMillis())*time.Millisecond, lim.MaxWait)
	if dl, ok := ctx.Deadline(); ok {
		wait = max(min(wait, time.Until(dl)-deadlineMargin), 0)
	}
	retries := g.MaxRetries
	if retries <= 0 {
		retries = meta.DefaultMaxRetries
	}
	base := &brokerpb.PopRequest{
		Group: g.Name, QueueId: -1, InvisibleMillis: inv.Milliseconds(), Ordered: g.Ordered,
		InitialPosition: brokerpb.InitialPosition(req.GetConsumeFrom()), InitialTimeUnixNano: req.GetConsumeFromTimeUnixNano(),
		MaxAttempts: int32(retries + 1),
	}
	return base, maxMsgs, wait, nil
}

// tagList turns a tag expression ("*", "a || b") into the brokers' tag
// list (empty: every tag). An empty expression takes the group's
// subscription of the topic.
func tagList(expr string, g meta.Group, topic string) []string {
	if strings.TrimSpace(expr) == "" {
		for _, s := range g.Subscriptions {
			if s.Topic == topic {
				expr = s.Tags
			}
		}
	}
	var out []string
	for _, tag := range strings.Split(expr, "||") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return nil
		}
		if tag != "" {
			out = append(out, tag)
		}
	}
	return out
}

// popTargets lists what a receive pops: an ordered topic's queues in its
// primary DC; an unordered topic's queues and the group's retry topic in
// this DC, and in every other DC that has no live consumers of the group.
func (p *Proxy) popTargets(ctx context.Context, g meta.Group, t meta.Topic, tags []string) []popTarget {
	var dcs []string
	if t.Ordered {
		primary := t.Primary
		if o, _, ok := p.meta.Ordered(t.Name); ok {
			primary = o.Primary
		}
		dcs = []string{primary}
	} else {
		for _, dc := range p.routableDCs() {
			if d, ok := p.meta.DC(dc); ok && d.State == meta.DCDown && dc != p.cfg.DC {
				continue
			}
			if dc == p.cfg.DC || p.presence == nil || !p.presence.Live(g.Name, dc) {
				dcs = append(dcs, dc)
			}
		}
	}
	out := p.mirrorTargets(ctx, t, tags)
	if !t.Ordered && !g.Ordered {
		out = append(out, p.groupMirrorTargets(ctx, g)...)
	}
	for _, dc := range dcs {
		brokers, err := p.brokersOf(ctx, t.Name, dc)
		if err != nil {
			p.log.DebugContext(ctx, "no route for receive", "topic", t.Name, "in", dc, "err", err)
			continue
		}
		for _, b := range brokers {
			if !b.readable() || p.brokers.open(b) {
				continue
			}
			out = append(out, popTarget{b: b, topic: t.Name, tags: tags})
			if !g.Ordered {
				out = append(out, popTarget{b: b, topic: names.RetryTopic(g.Name)})
			}
		}
	}
	return out
}

// mirrorTargets are the local copies of a replicated unordered topic's
// queues in DCs that are down, one target per queue: their messages are
// read here until the DC returns (consumer offsets are synced both ways by
// the replicators).
func (p *Proxy) mirrorTargets(ctx context.Context, t meta.Topic, tags []string) []popTarget {
	if !replicatedUnordered(t) {
		return nil
	}
	return p.downDCMirrors(ctx, t.Name, tags, func(string) int { return t.Queues })
}

// groupMirrorTargets are the local copies of a mirrored group's retry
// queues (meta.GroupQueuesMirrored) of DCs that are down: queue i of
// %MIRROR%<dc>%%RETRY%<group> holds what that DC's broker i had to
// redeliver.
func (p *Proxy) groupMirrorTargets(ctx context.Context, g meta.Group) []popTarget {
	if !meta.GroupQueuesMirrored(g, p.meta.Topic) {
		return nil
	}
	return p.downDCMirrors(ctx, names.RetryTopic(g.Name), nil, func(dc string) int { return len(p.meta.Placement(dc)) })
}

// downDCMirrors is one target per queue of the mirror of topic of each DC
// that is down (queues(dc) of them), each on the local broker that holds
// the queue now (meta.Place), never on one left with an older, partial
// copy (from before a broker joined): its records would be delivered again
// past the offsets synced to the holder.
func (p *Proxy) downDCMirrors(ctx context.Context, topic string, tags []string, queues func(dc string) int) []popTarget {
	local := p.meta.Placement(p.cfg.DC)
	var out []popTarget
	for _, d := range p.meta.DCs() {
		if d.Name == p.cfg.DC || d.State != meta.DCDown || len(local) == 0 {
			continue
		}
		mirror := names.MirrorTopic(d.Name, topic)
		brokers, err := p.brokersOf(ctx, mirror, p.cfg.DC)
		if err != nil {
			continue
		}
		for q := range queues(d.Name) {
			s := meta.Place(local, q)
			i := slices.IndexFunc(brokers, func(b brokerRef) bool { return b.Name == s.Name })
			if s.Live && i >= 0 && brokers[i].readable() && !p.brokers.open(brokers[i]) {
				out = append(out, popTarget{b: brokers[i], topic: mirror, tags: tags, queue: int32(q) + 1})
			}
		}
	}
	return out
}

// popSweep pops each target without waiting, starting at a rotating
// target, until limit messages are found.
func (p *Proxy) popSweep(ctx context.Context, group string, targets []popTarget, base *brokerpb.PopRequest, limit int) []*proxypb.ReceivedMessage {
	if len(targets) == 0 {
		return nil
	}
	var out []*proxypb.ReceivedMessage
	start := int(p.picker.next("pop/"+group) % uint64(len(targets)))
	for k := range targets {
		if len(out) >= limit || ctx.Err() != nil {
			break
		}
		got, _ := p.pop(ctx, targets[(start+k)%len(targets)], base, limit-len(out), 0)
		out = append(out, got...)
	}
	return out
}

// popSweepParallel asks every target at once, without waiting, for an
// equal share of the budget (one round trip instead of one per target),
// then tops up from the targets that filled their share, which may hold
// more. No call is cancelled, so no popped message is lost in a cancelled
// answer, and the answer never exceeds limit.
func (p *Proxy) popSweepParallel(ctx context.Context, targets []popTarget, base *brokerpb.PopRequest, limit int) []*proxypb.ReceivedMessage {
	share := limit / len(targets)
	got := make([][]*proxypb.ReceivedMessage, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Go(func() { got[i], _ = p.pop(ctx, tg, base, share, 0) })
	}
	wg.Wait()
	var out []*proxypb.ReceivedMessage
	for _, g := range got {
		out = append(out, g...)
	}
	for i, tg := range targets {
		if len(out) >= limit || ctx.Err() != nil {
			break
		}
		if len(got[i]) == share {
			more, _ := p.pop(ctx, tg, base, limit-len(out), 0)
			out = append(out, more...)
		}
	}
	return out
}

// popLongPoll waits on every target at once; the first to answer with
// messages ends the others' waits. When several brokers answer in the
// same instant, their messages are all returned, a few beyond limit rather
// than hidden until their invisibility ends (counted in
// duomq_proxy_receive_overflow_messages_total).
func (p *Proxy) popLongPoll(ctx context.Context, targets []popTarget, base *brokerpb.PopRequest, limit int, wait time.Duration) []*proxypb.ReceivedMessage {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.stopCtx, cancel)()
	if len(targets) == 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-pctx.Done():
		case <-t.C:
		}
		return nil
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []*proxypb.ReceivedMessage
	)
	for _, tg := range targets {
		wg.Go(func() {
			got, _ := p.pop(pctx, tg, base, limit, wait)
			if len(got) == 0 {
				return
			}
			cancel()
			mu.Lock()
			defer mu.Unlock()
			out = append(out, got...)
		})
	}
	wg.Wait()
	if extra := len(out) - limit; extra > 0 {
		p.metrics.popOverflow.Add(float64(extra))
	}
	return out
}

// pop is one broker Pop. A retry topic the broker has not created yet is
// empty, not an error.
func (p *Proxy) pop(ctx context.Context, tg popTarget, base *brokerpb.PopRequest, limit int, wait time.Duration) ([]*proxypb.ReceivedMessage, error) {
	req := &brokerpb.PopRequest{
		Group: base.Group, Topic: tg.topic, QueueId: tg.queue - 1, MaxMessages: int32(limit), InvisibleMillis: base.InvisibleMillis,
		WaitMillis: wait.Milliseconds(), Tags: tg.tags, Ordered: base.Ordered, InitialPosition: base.InitialPosition,
		InitialTimeUnixNano: base.InitialTimeUnixNano, MaxAttempts: base.MaxAttempts, PopId: rand.Text(),
	}
	cctx, cancel := p.callCtx(ctx, wait)
	defer cancel()
	var res *brokerpb.PopResponse
	err := p.call(cctx, tg.b, "pop", func(ctx context.Context, c brokerpb.BrokerClient) error {
		var err error
		res, err = c.Pop(ctx, req)
		return err
	})
	if err != nil && (canceled(err) || status.Code(err) == codes.DeadlineExceeded) {
		p.releasePop(ctx, tg.b, req.PopId)
	}
	if err != nil {
		if rpcerr.Reason(err) != reasonBrokerTopicNotFound && !canceled(err) && status.Code(err) != codes.DeadlineExceeded {
			p.log.DebugContext(ctx, "pop failed", "broker", tg.b.Name, "dc", tg.b.DC, "topic", tg.topic, "err", err)
		}
		return nil, err
	}
	out := make([]*proxypb.ReceivedMessage, 0, len(res.GetMessages()))
	for _, pm := range res.GetMessages() {
		out = append(out, received(tg, pm))
	}
	return out, nil
}

// releasePopTimeout bounds a ReleasePop call.
const releasePopTimeout = 500 * time.Millisecond

// releasePop asks the broker to make the messages of a pop whose call was
// cancelled or timed out visible again: the broker may have answered, and
// its answer, lost on the way, would have left them invisible until their
// deadline. Counted with the handed-back messages. It costs one small call
// per cancelled pop: in practice the other targets of a long poll that
// ended because one answered (an idle consumer's first message), not the
// sweeps of a busy one.
func (p *Proxy) releasePop(ctx context.Context, b brokerRef, id string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releasePopTimeout)
	defer cancel()
	defer context.AfterFunc(p.stopCtx, cancel)()
	cl, err := p.brokers.client(b.Addr)
	if err != nil {
		return
	}
	res, err := cl.ReleasePop(rctx, &brokerpb.ReleasePopRequest{PopId: id})
	if err != nil {
		p.log.DebugContext(ctx, "lost pop not released; its messages return when their invisibility ends", "broker", b.Name, "err", err)
		return
	}
	p.metrics.handedBack.Add(float64(res.GetReleased()))
}

// received presents a popped message with a receipt handle naming where
// it was popped.
func received(tg popTarget, pm *brokerpb.PoppedMessage) *proxypb.ReceivedMessage {
	out := present(tg.b.DC, pm.GetMessage())
	out.ReconsumeTimes = max(out.ReconsumeTimes, pm.GetAttempt()-1)
	h := receipt{DC: tg.b.DC, Broker: tg.b.Name, Addr: tg.b.Addr, Topic: tg.topic, Handle: pm.GetReceiptHandle()}
	return &proxypb.ReceivedMessage{
		Message: out, ReceiptHandle: h.encode(), Attempt: pm.GetAttempt(), InvisibleUntilUnixNano: pm.GetInvisibleUntilUnixNano(),
	}
}

// present converts a stored message for clients: a retry or dead-letter
// copy under its original topic and id, reserved properties as fields.
func present(dc string, m *brokerpb.Message) *proxypb.Message {
	props := m.GetProperties()
	out := &proxypb.Message{
		Id: m.GetId(), Topic: m.GetTopic(), Keys: m.GetKeys(), Tag: m.GetTag(), ShardingKey: m.GetShardingKey(),
		Properties: userProperties(props), Body: m.GetBody(), Compressed: m.GetFlags()&commitlog.FlagCompressed != 0,
		BornTimeUnixNano: m.GetBornTimeUnixNano(), BornDc: m.GetBornDc(), StoreTimeUnixNano: m.GetStoreTimeUnixNano(),
		Dc: dc, QueueId: m.GetQueueId(), Offset: m.GetQueueOffset(),
	}
	if v := props[propOriginTopic]; v != "" {
		out.Topic = v
	}
	if _, topic, ok := names.ParseMirror(out.Topic); ok {
		out.Topic = topic // a DC that is down: read from its copy here
	}
	if v := props[propOriginID]; v != "" {
		out.Id = v
	}
	if n, err := strconv.Atoi(props[propReconsumeTimes]); err == nil {
		out.ReconsumeTimes = int32(n)
	}
	if n, err := strconv.ParseInt(props[propDeliverAt], 10, 64); err == nil {
		out.DeliverAtUnixNano = n
	}
	return out
}

// Ack settles a received message at the broker that handed it out.
func (p *Proxy) Ack(ctx context.Context, req *proxypb.AckRequest) (*proxypb.AckResponse, error) {
	r, b, err := p.settleTarget(ctx, req.GetGroup(), req.GetTopic(), req.GetReceiptHandle(), req.GetClientId())
	if err != nil {
		return nil, err
	}
	cctx, cancel := p.callCtx(ctx, 0)
	defer cancel()
	err = p.call(cctx, b, "ack", func(ctx context.Context, c brokerpb.BrokerClient) error {
		_, err := c.Ack(ctx, &brokerpb.AckRequest{Group: req.GetGroup(), Topic: r.Topic, ReceiptHandle: r.Handle})
		return err
	})
	if err != nil {
		return nil, p.settleErr(b, err)
	}
	return &proxypb.AckResponse{}, nil
}

// ChangeInvisibleDuration moves a received message's invisibility; 0
// hands it back for redelivery. The answer carries the new handle.
func (p *Proxy) ChangeInvisibleDuration(ctx context.Context, req *proxypb.ChangeInvisibleDurationRequest) (*proxypb.ChangeInvisibleDurationResponse, error) {
	if req.GetInvisibleMillis() < 0 {
		return nil, errorf(ErrInvalidArgument, "invisible_millis %d is negative (0 hands the message back)", req.GetInvisibleMillis())
	}
	r, b, err := p.settleTarget(ctx, req.GetGroup(), req.GetTopic(), req.GetReceiptHandle(), req.GetClientId())
	if err != nil {
		return nil, err
	}
	inv := min(time.Duration(req.GetInvisibleMillis())*time.Millisecond, p.cfg.Limits.MaxInvisible)
	cctx, cancel := p.callCtx(ctx, 0)
	defer cancel()
	var res *brokerpb.ChangeInvisibleDurationResponse
	err = p.call(cctx, b, "change-invisible", func(ctx context.Context, c brokerpb.BrokerClient) error {
		var err error
		res, err = c.ChangeInvisibleDuration(ctx, &brokerpb.ChangeInvisibleDurationRequest{
			Group: req.GetGroup(), Topic: r.Topic, ReceiptHandle: r.Handle, InvisibleMillis: inv.Milliseconds(),
		})
		return err
	})
	if err != nil {
		return nil, p.settleErr(b, err)
	}
	r.Handle = res.GetReceiptHandle()
	return &proxypb.ChangeInvisibleDurationResponse{ReceiptHandle: r.encode()}, nil
}

// settleTarget checks an ack's group and decodes its handle into the
// broker to call: found by name in the route (its address may have
// changed), else at the address the handle recorded.
func (p *Proxy) settleTarget(ctx context.Context, group, topic, handle, clientID string) (receipt, brokerRef, error) {
	if _, err := p.group(group); err != nil {
		return receipt{}, brokerRef{}, err
	}
	if err := p.throttle.client(clientKey(ctx, clientID)); err != nil {
		p.metrics.throttled.WithLabelValues("client").Inc()
		return receipt{}, brokerRef{}, err
	}
	r, err := decodeReceipt(handle)
	if err != nil {
		return r, brokerRef{}, err
	}
	if p.clients.touchGroup(group) {
		p.publishGroups()
	}
	routeTopic := topic
	if names.Topic(routeTopic) != nil {
		routeTopic = r.Topic
	}
	if b, ok := p.brokerByName(ctx, routeTopic, r.DC, r.Broker); ok {
		return r, b, nil
	}
	if r.Addr == "" {
		return r, brokerRef{}, errorf(ErrUnavailable, "broker %s of %s that handed out the message is not in the route now", r.Broker, r.DC)
	}
	return r, brokerRef{DC: r.DC, Name: r.Broker, Addr: r.Addr}, nil
}

func (p *Proxy) settleErr(b brokerRef, err error) error {
	if brokerFailed(err) {
		return errorf(ErrUnavailable, "broker %s of %s that handed out the message: %v", b.Name, b.DC, err)
	}
	return err
}
