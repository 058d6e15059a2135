package proxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/internal/msgid"
	"github.com/duomq/duomq/internal/rpcerr"
)

// Trace limits: messages returned by key (the brokers' bound too).
const (
	defaultTraceMessages = 32
	maxTraceMessages     = 128
)

// TraceMessage asks every broker of every DC for the message's records
// (brokerpb LookupByID/LookupByKey with trace) and merges them into one
// trace per message. Brokers that cannot be asked are listed in the
// answer; a message found nowhere is MESSAGE_NOT_FOUND.
func (p *Proxy) TraceMessage(ctx context.Context, req *proxypb.TraceMessageRequest) (*proxypb.TraceMessageResponse, error) {
	q, err := p.traceQuery(req)
	if err != nil {
		return nil, err
	}
	brokers := p.traceBrokers(ctx, q.topic)
	if len(brokers) == 0 {
		return nil, errorf(ErrUnavailable, "trace: no broker known in any DC (no live broker records in the metadata, no route)")
	}
	hits, unreachable := p.askBrokers(ctx, brokers, q)
	if len(unreachable) == len(brokers) {
		return nil, errorf(ErrUnavailable, "trace: no broker could be asked: %s", strings.Join(unreachable, "; "))
	}
	msgs := assembleTrace(hits, p.subscribers)
	if len(msgs) == 0 {
		what := fmt.Sprintf("id %q", q.id)
		if q.key != "" {
			what = fmt.Sprintf("key %q", q.key)
		}
		if q.topic != "" {
			what += fmt.Sprintf(" in topic %q", q.topic)
		}
		msg := fmt.Sprintf("no message with %s on any of %d brokers", what, len(brokers))
		if len(unreachable) > 0 {
			msg += fmt.Sprintf("; %d could not be asked: %s", len(unreachable), strings.Join(unreachable, "; "))
		}
		return nil, errorf(ErrMessageNotFound, "%s", msg)
	}
	return &proxypb.TraceMessageResponse{Messages: msgs[:min(len(msgs), q.max)], Unreachable: unreachable}, nil
}

// traceQuery is a validated trace request.
type traceQuery struct {
	topic, id, key string
	max            int
}

func (p *Proxy) traceQuery(req *proxypb.TraceMessageRequest) (traceQuery, error) {
	q := traceQuery{topic: req.GetTopic(), id: req.GetId(), key: req.GetKey(), max: int(req.GetMaxMessages())}
	switch {
	case (q.id == "") == (q.key == ""):
		return q, errorf(ErrInvalidArgument, "trace: give a message id or a key (exactly one)")
	case q.id != "" && !msgid.Valid(q.id):
		return q, errorf(ErrInvalidArgument, "trace: id %q: message ids are 1 to 128 printable ASCII characters", q.id)
	case q.key != "" && q.topic == "":
		return q, errorf(ErrInvalidArgument, "trace: a trace by key needs the topic (keys are indexed per topic)")
	case q.max < 0 || q.max > maxTraceMessages:
		return q, errorf(ErrInvalidArgument, "trace: max_messages %d not in [0, %d]", q.max, maxTraceMessages)
	}
	if q.max == 0 {
		q.max = defaultTraceMessages
	}
	if q.topic != "" {
		if _, err := p.topic(q.topic); err != nil {
			return q, err
		}
	}
	return q, nil
}

// traceBrokers lists every broker of every DC: the live ones in the
// metadata (alive records) and, with a topic, those its routes name.
func (p *Proxy) traceBrokers(ctx context.Context, topic string) []brokerRef {
	dcs := p.routableDCs()
	for _, d := range p.meta.DCs() {
		if !slices.Contains(dcs, d.Name) {
			dcs = append(dcs, d.Name)
		}
	}
	var out []brokerRef
	for _, dc := range dcs {
		seen := map[string]bool{}
		for _, a := range p.meta.Brokers(dc) {
			seen[a.Name] = true
			out = append(out, brokerRef{DC: dc, Name: a.Name, Addr: a.Address})
		}
		if topic == "" || p.routes[dc] == nil {
			continue
		}
		routed, err := p.brokersOf(ctx, topic, dc)
		if err != nil {
			p.log.Debug("no route for trace", "topic", topic, "in", dc, "err", err)
		}
		for _, b := range routed {
			if !seen[b.Name] {
				seen[b.Name] = true
				out = append(out, b)
			}
		}
	}
	return out
}

// brokerHit is one broker's answer.
type brokerHit struct {
	b   brokerRef
	res *brokerpb.LookupResponse
}

// askBrokers runs the look-up on every broker at once.
func (p *Proxy) askBrokers(ctx context.Context, brokers []brokerRef, q traceQuery) ([]brokerHit, []string) {
	hits := make([]brokerHit, len(brokers))
	errs := make([]error, len(brokers))
	var wg sync.WaitGroup
	for i, b := range brokers {
		wg.Go(func() {
			hits[i].b = b
			hits[i].res, errs[i] = p.lookupTrace(ctx, b, q)
		})
	}
	wg.Wait()
	var unreachable []string
	for i, err := range errs {
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s/%s: %v", brokers[i].DC, brokers[i].Name, err))
		}
	}
	return hits, unreachable
}

func (p *Proxy) lookupTrace(ctx context.Context, b brokerRef, q traceQuery) (*brokerpb.LookupResponse, error) {
	cctx, cancel := p.callCtx(ctx, 0)
	defer cancel()
	var res *brokerpb.LookupResponse
	err := p.call(cctx, b, "trace", func(ctx context.Context, c brokerpb.BrokerClient) error {
		var err error
		if q.id != "" {
			res, err = c.LookupByID(ctx, &brokerpb.LookupByIDRequest{Id: q.id, Topic: q.topic, Trace: true})
		} else {
			res, err = c.LookupByKey(ctx, &brokerpb.LookupByKeyRequest{Topic: q.topic, Key: q.key, MaxResults: int32(q.max), Trace: true})
		}
		return err
	})
	switch rpcerr.Reason(err) {
	case reasonBrokerNotFound, reasonBrokerTopicNotFound: // the broker holds none
		return &brokerpb.LookupResponse{}, nil
	}
	return res, err
}

// subscribers are the groups subscribing to topic in the metadata.
func (p *Proxy) subscribers(topic string) []string {
	var out []string
	for _, g := range p.meta.Groups() {
		if slices.Contains(g.Topics(), topic) {
			out = append(out, g.Name)
		}
	}
	return out
}
