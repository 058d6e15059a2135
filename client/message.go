package client

import (
	"maps"
	"time"

	"github.com/duomq/duomq/api/proxypb"
)

// Message is a message to send.
type Message struct {
	// Topic is required.
	Topic string
	// Body is the payload; bodies over Config.CompressThreshold travel
	// compressed and reach consumers as sent.
	Body []byte
	// Tag is the one tag consumers filter on.
	Tag string
	// Keys are business keys, indexed for look-ups.
	Keys []string
	// ShardingKey picks the queue of an ordered topic: messages with the
	// same sharding key are delivered in the order they were sent.
	ShardingKey string
	// Properties are application headers (trace context, ...).
	Properties map[string]string
	// DeliverAt delays delivery until this time (zero: at once).
	DeliverAt time.Time
	// ID is the message id and idempotency key. Send fills it in when
	// empty, before the first attempt, so every retry carries the same id.
	ID string
}

// SendReceipt is where a sent message was stored.
type SendReceipt struct {
	ID     string
	Topic  string
	DC     string
	Broker string
	Queue  uint32
	Offset int64
	// Fallback: the message went to another DC than the proxy's, because
	// the proxy's DC could not take the write (FallbackReason says why).
	Fallback       bool
	FallbackReason string
	// Duplicate: a retried send found its id already stored; the receipt
	// is the original placement.
	Duplicate bool
}

// MessageView is a received message.
type MessageView struct {
	ID          string
	Topic       string
	Tag         string
	Keys        []string
	ShardingKey string
	Properties  map[string]string
	// Body is decompressed.
	Body      []byte
	BornTime  time.Time
	BornDC    string
	DeliverAt time.Time
	StoreTime time.Time
	// DC, Queue and Offset say where the message is stored.
	DC     string
	Queue  uint32
	Offset int64
	// ReconsumeTimes counts earlier deliveries that were not acked.
	ReconsumeTimes int32
	// Attempt is 1 on the first delivery.
	Attempt int32
	// InvisibleUntil is when the message is delivered again unless acked.
	InvisibleUntil time.Time

	receipt string
}

// ReceiptHandle is the handle that acks or changes this delivery.
func (m *MessageView) ReceiptHandle() string { return m.receipt }

func receiptFromPB(r *proxypb.SendResult) SendReceipt {
	return SendReceipt{
		ID: r.GetId(), Topic: r.GetTopic(), DC: r.GetDc(), Broker: r.GetBroker(),
		Queue: r.GetQueueId(), Offset: r.GetOffset(),
		Fallback: r.GetFallback(), FallbackReason: r.GetFallbackReason(), Duplicate: r.GetDuplicate(),
	}
}

// toPB builds the wire message; the body is compressed when that pays.
func (m *Message) toPB(bornDC string, threshold int, now time.Time) *proxypb.Message {
	body, compressed := compressBody(m.Body, threshold)
	pm := &proxypb.Message{
		Id: m.ID, Topic: m.Topic, Keys: m.Keys, Tag: m.Tag, ShardingKey: m.ShardingKey,
		Properties: maps.Clone(m.Properties), Body: body, Compressed: compressed,
		BornTimeUnixNano: now.UnixNano(), BornDc: bornDC,
	}
	if !m.DeliverAt.IsZero() {
		pm.DeliverAtUnixNano = m.DeliverAt.UnixNano()
	}
	return pm
}

// viewFromPB converts a wire message, decompressing its body.
func viewFromPB(m *proxypb.Message) (*MessageView, error) {
	v := &MessageView{
		ID: m.GetId(), Topic: m.GetTopic(), Tag: m.GetTag(), Keys: m.GetKeys(), ShardingKey: m.GetShardingKey(),
		Properties: m.GetProperties(), Body: m.GetBody(), BornDC: m.GetBornDc(),
		BornTime: unixNano(m.GetBornTimeUnixNano()), DeliverAt: unixNano(m.GetDeliverAtUnixNano()),
		StoreTime: unixNano(m.GetStoreTimeUnixNano()), DC: m.GetDc(), Queue: m.GetQueueId(), Offset: m.GetOffset(),
		ReconsumeTimes: m.GetReconsumeTimes(),
	}
	if m.GetCompressed() {
		b, err := decompressBody(m.GetBody())
		if err != nil {
			return v, err
		}
		v.Body = b
	}
	return v, nil
}

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
