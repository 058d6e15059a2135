package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/names"
	"github.com/duomq/duomq/internal/rpcerr"
)

// Dead letters are read with the brokers' Pull from the group's committed
// offset of %DLQ%<group> (a message before it has been re-driven), so
// listing changes nothing and re-driving advances the offset.

// dlqQueue is one queue of a group's dead-letter topic on one broker.
type dlqQueue struct {
	b     brokerRef
	topic string
	queue uint32
}

// ListDeadLetters returns up to max_messages of the group's dead letters
// in this DC that have not been re-driven.
func (p *Proxy) ListDeadLetters(ctx context.Context, req *proxypb.ListDeadLettersRequest) (*proxypb.ListDeadLettersResponse, error) {
	g, err := p.group(req.GetGroup())
	if err != nil {
		return nil, err
	}
	if req.GetMaxMessages() < 0 {
		return nil, errorf(ErrInvalidArgument, "max_messages %d is negative", req.GetMaxMessages())
	}
	limit := int(req.GetMaxMessages())
	if limit == 0 || limit > p.cfg.Limits.MaxDeadLetters {
		limit = p.cfg.Limits.MaxDeadLetters
	}
	queues, err := p.dlqQueues(ctx, g)
	if err != nil {
		return nil, err
	}
	out := &proxypb.ListDeadLettersResponse{}
	for _, q := range queues {
		msgs, _, err := p.readDLQ(ctx, g.Name, q, limit-len(out.Messages))
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			out.Messages = append(out.Messages, present(q.b.DC, m))
		}
		if len(out.Messages) >= limit {
			break
		}
	}
	return out, nil
}

// RedriveDeadLetters sends the group's dead letters in this DC (all, or
// those whose id is listed) back to their original topic. Per queue, a
// dead letter that is not selected but lies before a selected one is
// appended to the dead-letter queue again, so the committed offset can move
// past every handled message: each is re-driven once and none is lost.
func (p *Proxy) RedriveDeadLetters(ctx context.Context, req *proxypb.RedriveDeadLettersRequest) (*proxypb.RedriveDeadLettersResponse, error) {
	g, err := p.group(req.GetGroup())
	if err != nil {
		return nil, err
	}
	queues, err := p.dlqQueues(ctx, g)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, q := range queues {
		n, err := p.redriveQueue(ctx, g.Name, q, req.GetIds())
		total += n
		if err != nil {
			return nil, fmt.Errorf("re-drove %d dead letters, then: %w", total, err)
		}
	}
	if total > 0 {
		p.log.Info("dead letters re-driven", "group", g.Name, "count", total)
	}
	return &proxypb.RedriveDeadLettersResponse{Redriven: int32(total)}, nil
}

func (p *Proxy) redriveQueue(ctx context.Context, group string, q dlqQueue, ids []string) (int, error) {
	msgs, _, err := p.readDLQ(ctx, group, q, p.cfg.Limits.MaxDeadLetters)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	selected := func(m *brokerpb.Message) bool {
		return len(ids) == 0 || slices.Contains(ids, m.GetId()) || slices.Contains(ids, m.GetProperties()[propOriginID])
	}
	last := -1
	for i, m := range msgs {
		if selected(m) {
			last = i
		}
	}
	n := 0
	for _, m := range msgs[:last+1] {
		if selected(m) {
			if err := p.redriveOne(ctx, m); err != nil {
				return n, err
			}
			n++
			continue
		}
		if err := p.reappend(ctx, q, m); err != nil {
			return n, err
		}
	}
	return n, p.commitDLQ(ctx, group, q, msgs[last].GetQueueOffset()+1)
}

// redriveOne sends a dead letter to its original topic under its
// original id, as a new message (not idempotent: the original id is
// stored already).
func (p *Proxy) redriveOne(ctx context.Context, m *brokerpb.Message) error {
	origin := m.GetProperties()[propOriginTopic]
	if origin == "" {
		return errorf(ErrInvalidArgument, "dead letter %s has no %s property: cannot tell its topic", m.GetId(), propOriginTopic)
	}
	t, err := p.topic(origin)
	if err != nil {
		return err
	}
	in := &brokerpb.MessageInput{
		Id: m.GetId(), Keys: m.GetKeys(), Tag: m.GetTag(), ShardingKey: m.GetShardingKey(), Body: m.GetBody(),
		BornTimeUnixNano: m.GetBornTimeUnixNano(), BornDc: m.GetBornDc(), Flags: m.GetFlags(),
		Properties: userProperties(m.GetProperties()),
	}
	if id := m.GetProperties()[propOriginID]; id != "" {
		in.Id = id
	}
	msgs := []*brokerpb.MessageInput{in}
	if t.Ordered {
		_, err = p.sendOrdered(ctx, t, msgs, false)
	} else {
		_, err = p.sendUnordered(ctx, t, msgs, false)
	}
	return err
}

// reappend puts a dead letter at the end of its dead-letter queue.
func (p *Proxy) reappend(ctx context.Context, q dlqQueue, m *brokerpb.Message) error {
	in := &brokerpb.MessageInput{
		Id: m.GetId(), Keys: m.GetKeys(), Tag: m.GetTag(), ShardingKey: m.GetShardingKey(), Body: m.GetBody(),
		Properties: m.GetProperties(), BornTimeUnixNano: m.GetBornTimeUnixNano(), BornDc: m.GetBornDc(), Flags: m.GetFlags(),
	}
	_, err := p.brokerSend(ctx, q.b, &brokerpb.SendRequest{Topic: q.topic, QueueId: int32(q.queue), Messages: []*brokerpb.MessageInput{in}})
	return err
}

func userProperties(props map[string]string) map[string]string {
	var out map[string]string
	for k, v := range props {
		if !strings.HasPrefix(k, ReservedPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// dlqQueues finds the queues of %DLQ%<group> on this DC's brokers that
// host the group's topics.
func (p *Proxy) dlqQueues(ctx context.Context, g meta.Group) ([]dlqQueue, error) {
	dlq := names.DLQTopic(g.Name)
	seen := map[string]brokerRef{}
	for _, topic := range append(g.Topics(), dlq) {
		bs, err := p.brokersOf(ctx, topic, p.cfg.DC)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			seen[b.Name] = b
		}
	}
	var out []dlqQueue
	for _, name := range slices.Sorted(maps.Keys(seen)) {
		b := seen[name]
		cctx, cancel := p.callCtx(ctx, 0)
		var res *brokerpb.ListTopicsResponse
		err := p.call(cctx, b, "list-topics", func(ctx context.Context, c brokerpb.BrokerClient) error {
			var err error
			res, err = c.ListTopics(ctx, &brokerpb.ListTopicsRequest{})
			return err
		})
		cancel()
		if err != nil {
			return nil, errorf(ErrUnavailable, "dead letters of group %q: broker %s: %v", g.Name, b.Name, err)
		}
		for _, tc := range res.GetTopics() {
			if tc.GetName() == dlq {
				for q := range tc.GetQueues() {
					out = append(out, dlqQueue{b: b, topic: dlq, queue: q})
				}
			}
		}
	}
	return out, nil
}

// readDLQ reads up to limit dead letters of one queue from the group's
// committed offset (or the queue's start), and returns the offset after
// them.
func (p *Proxy) readDLQ(ctx context.Context, group string, q dlqQueue, limit int) ([]*brokerpb.Message, int64, error) {
	cctx, cancel := p.callCtx(ctx, 0)
	defer cancel()
	var (
		from, to int64
		out      []*brokerpb.Message
	)
	err := p.call(cctx, q.b, "read-dlq", func(ctx context.Context, c brokerpb.BrokerClient) error {
		off, err := c.GetQueueOffsets(ctx, &brokerpb.GetQueueOffsetsRequest{Topic: q.topic, QueueId: q.queue})
		if err != nil {
			return err
		}
		from, to = off.GetMinOffset(), off.GetMaxOffset()
		committed, err := c.QueryOffset(ctx, &brokerpb.QueryOffsetRequest{Group: group, Topic: q.topic, QueueId: q.queue})
		if err != nil {
			return err
		}
		if committed.GetFound() {
			from = max(from, committed.GetOffset())
		}
		for from < to && len(out) < limit {
			res, err := c.Pull(ctx, &brokerpb.PullRequest{Topic: q.topic, QueueId: q.queue, Offset: from, MaxMessages: int32(min(limit-len(out), 256))})
			if err != nil {
				return err
			}
			out = append(out, res.GetMessages()...)
			if res.GetNextOffset() <= from {
				break
			}
			from = res.GetNextOffset()
		}
		return nil
	})
	if err != nil && rpcerr.Reason(err) != reasonBrokerTopicNotFound {
		return nil, 0, err
	}
	return out, from, nil
}

func (p *Proxy) commitDLQ(ctx context.Context, group string, q dlqQueue, offset int64) error {
	cctx, cancel := p.callCtx(ctx, 0)
	defer cancel()
	return p.call(cctx, q.b, "commit-offset", func(ctx context.Context, c brokerpb.BrokerClient) error {
		_, err := c.CommitOffset(ctx, &brokerpb.CommitOffsetRequest{Group: group, Topic: q.topic, QueueId: q.queue, Offset: offset})
		return err
	})
}
