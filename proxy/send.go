package proxy

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/msgid"
	"github.com/duomq/duomq/internal/names"
)

// Properties the brokers own (clients may not set names starting with
// ReservedPrefix).
const (
	ReservedPrefix       = "__"
	propDeliverAt        = "__DELIVER_AT"
	propOriginTopic      = "__ORIGIN_TOPIC"
	propOriginID         = "__ORIGIN_ID"
	propReconsumeTimes   = "__RECONSUME_TIMES"
	maxPropertyNameBytes = 256
)

// Send stores messages: unordered topics in this DC (or a fallback DC),
// ordered topics in their primary DC under the current epoch.
func (p *Proxy) Send(ctx context.Context, req *proxypb.SendRequest) (*proxypb.SendResponse, error) {
	start := p.now()
	topic, err := p.topic(req.GetTopic())
	if err != nil {
		return nil, err
	}
	if err := p.throttle.client(clientKey(ctx, req.GetClientId())); err != nil {
		p.metrics.throttled.WithLabelValues("client").Inc()
		return nil, err
	}
	msgs, err := p.sendInputs(topic, req)
	if err != nil {
		return nil, err
	}
	if err := p.throttle.topic(topic.Name, len(msgs)); err != nil {
		p.metrics.throttled.WithLabelValues("topic").Inc()
		return nil, err
	}
	var results []*proxypb.SendResult
	if topic.Ordered {
		results, err = p.sendOrdered(ctx, topic, msgs, req.GetIdempotent())
	} else {
		results, err = p.sendUnordered(ctx, topic, msgs, req.GetIdempotent())
	}
	if err != nil {
		return nil, err
	}
	took := p.now().Sub(start).Seconds()
	observed := make([]string, 0, 2) // once per storing DC of the call
	for _, r := range results {
		p.metrics.sent.WithLabelValues(topic.Name, r.Dc).Inc()
		if r.Fallback {
			p.metrics.fallbacks.WithLabelValues(topic.Name, r.Dc).Inc()
		}
		if !slices.Contains(observed, r.Dc) {
			observed = append(observed, r.Dc)
			p.metrics.sendDuration.WithLabelValues(topic.Name, r.Dc).Observe(took)
		}
	}
	return &proxypb.SendResponse{Results: results}, nil
}

// topic finds a topic in the metadata.
func (p *Proxy) topic(name string) (meta.Topic, error) {
	if err := names.Topic(name); err != nil {
		return meta.Topic{}, errorf(ErrInvalidName, "%v", err)
	}
	if strings.HasPrefix(name, names.RetryPrefix) || strings.HasPrefix(name, names.DLQPrefix) {
		return meta.Topic{}, errorf(ErrInvalidName, "topic %q is a system topic: clients cannot use it directly", name)
	}
	t, ok := p.meta.Topic(name)
	if !ok {
		return meta.Topic{}, topicNotFound(name)
	}
	return t, nil
}

// sendInputs validates every message before anything is sent and converts
// them to the broker's form: ids assigned, born time and DC stamped,
// deliver-at carried as a property.
func (p *Proxy) sendInputs(t meta.Topic, req *proxypb.SendRequest) ([]*brokerpb.MessageInput, error) {
	in := req.GetMessages()
	switch {
	case len(in) == 0:
		return nil, errorf(ErrInvalidArgument, "send to topic %q: no messages", t.Name)
	case len(in) > p.cfg.Limits.MaxBatch:
		return nil, errorf(ErrInvalidArgument, "send to topic %q: %d messages, over the batch limit of %d (limits.max-batch)", t.Name, len(in), p.cfg.Limits.MaxBatch)
	}
	limit := t.MaxMessageBytes
	if limit <= 0 {
		limit = meta.DefaultMaxMessageBytes
	}
	now := p.now().UnixNano()
	out := make([]*brokerpb.MessageInput, len(in))
	for i, m := range in {
		if err := p.checkMessage(t, i, m, limit); err != nil {
			return nil, err
		}
		bm := &brokerpb.MessageInput{
			Id: m.GetId(), Keys: m.GetKeys(), Tag: m.GetTag(), ShardingKey: m.GetShardingKey(),
			Properties: m.GetProperties(), Body: m.GetBody(), BornTimeUnixNano: m.GetBornTimeUnixNano(), BornDc: m.GetBornDc(),
		}
		if bm.Id == "" {
			bm.Id = msgid.New()
		}
		if bm.BornTimeUnixNano == 0 {
			bm.BornTimeUnixNano = now
		}
		if bm.BornDc == "" {
			bm.BornDc = p.cfg.DC
		}
		if m.GetCompressed() {
			bm.Flags |= commitlog.FlagCompressed
		}
		if at := m.GetDeliverAtUnixNano(); at > now {
			props := make(map[string]string, len(bm.Properties)+1)
			for k, v := range bm.Properties {
				props[k] = v
			}
			props[propDeliverAt] = strconv.FormatInt(at, 10)
			bm.Properties = props
		}
		out[i] = bm
	}
	return out, nil
}

// checkMessage refuses what the brokers would refuse or what breaks the
// proxy's routing, naming the message and the limit.
func (p *Proxy) checkMessage(t meta.Topic, i int, m *proxypb.Message, limit int64) error {
	if n := int64(len(m.GetBody())); n > limit {
		return errorf(ErrMessageTooLarge, "message %d: body is %d bytes, over topic %q's limit of %d bytes (max_message_bytes); nothing was sent", i, n, t.Name, limit)
	}
	if m.GetTopic() != "" && m.GetTopic() != t.Name {
		return errorf(ErrInvalidArgument, "message %d names topic %q in a send to topic %q", i, m.GetTopic(), t.Name)
	}
	if id := m.GetId(); id != "" && !msgid.Valid(id) {
		return errorf(ErrInvalidArgument, "message %d: id %q: use 1 to 128 printable ASCII characters", i, id)
	}
	for k := range m.GetProperties() {
		if strings.HasPrefix(k, ReservedPrefix) {
			return errorf(ErrReservedProperty, "message %d: property %q: names starting with %q are reserved for the brokers", i, k, ReservedPrefix)
		}
		if k == "" || len(k) > maxPropertyNameBytes {
			return errorf(ErrInvalidArgument, "message %d: property name must be 1 to %d bytes", i, maxPropertyNameBytes)
		}
	}
	if t.Ordered {
		if m.GetShardingKey() == "" {
			return errorf(ErrInvalidArgument, "message %d: topic %q is ordered: every message needs a sharding_key", i, t.Name)
		}
		if m.GetDeliverAtUnixNano() > 0 {
			return errorf(ErrInvalidArgument, "message %d: topic %q is ordered: delayed delivery would break its order", i, t.Name)
		}
	}
	return nil
}
