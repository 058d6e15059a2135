package drills

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/duomq/duomq/client"
)

// Properties the workload stamps on its messages, read back on delivery.
const (
	propKey = "drill-key"
	propSeq = "drill-seq"
)

// recorder keeps the workload's records; safe for concurrent use.
type recorder struct {
	mu         sync.Mutex
	sends      []Send
	deliveries []Delivery
}

func (r *recorder) send(s Send) {
	r.mu.Lock()
	r.sends = append(r.sends, s)
	r.mu.Unlock()
}

// ackedSince reports whether a send to topic was acked at or after t.
func (r *recorder) ackedSince(topic string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.sends) - 1; i >= 0; i-- {
		s := r.sends[i]
		if s.Topic == topic && s.Acked && !s.At.Before(t) {
			return true
		}
	}
	return false
}

func (r *recorder) deliver(d Delivery) {
	r.mu.Lock()
	r.deliveries = append(r.deliveries, d)
	r.mu.Unlock()
}

// counts are the acks and deliveries so far (for progress).
func (r *recorder) counts() (acked, delivered int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sends {
		if s.Acked {
			acked++
		}
	}
	return acked, len(r.deliveries)
}

// perDC are the acks by acking DC, the deliveries by consumer DC, and the
// backlog of each acking DC (its acked messages not delivered yet).
func (r *recorder) perDC() (acked, delivered, backlog map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	acked, delivered, backlog = map[string]int{}, map[string]int{}, map[string]int{}
	by := map[string]string{}
	for _, s := range r.sends {
		if s.Acked && s.DC != "" && by[s.ID] == "" {
			by[s.ID] = s.DC
			acked[s.DC]++
			backlog[s.DC]++
		}
	}
	seen := map[string]bool{}
	for _, d := range r.deliveries {
		delivered[d.DC]++
		if dc := by[d.ID]; dc != "" && !seen[d.ID] {
			seen[d.ID] = true
			backlog[dc]--
		}
	}
	return acked, delivered, backlog
}

func (r *recorder) lastDelivery() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.deliveries) == 0 {
		return time.Time{}
	}
	return r.deliveries[len(r.deliveries)-1].At
}

// classOf is a topic's class for the checker.
func classOf(t TopicLoad) Class {
	switch {
	case !t.Ordered:
		return Unordered
	case t.Replication == "async":
		return OrderedAsync
	}
	return OrderedSync
}

// clients opens one SDK client per DC's proxy.
func closeClients(cs map[string]*client.Client) {
	for _, c := range cs {
		c.Close()
	}
}

func openClients(ctx context.Context, proxies map[string]string, app string, attempt time.Duration) (map[string]*client.Client, error) {
	out := map[string]*client.Client{}
	for dc, addr := range proxies {
		cfg := client.DefaultConfig()
		cfg.Proxy, cfg.App = addr, app
		cfg.IDC.Default = dc
		// A probe of the system's recovery: retry often, so the measured
		// RTO is the system's, not a client's growing backoff.
		cfg.RequestTimeout = attempt
		cfg.Retry.MaxAttempts, cfg.Retry.InitialBackoff, cfg.Retry.MaxBackoff = 20, 50*time.Millisecond, 250*time.Millisecond
		c, err := client.New(ctx, cfg)
		if err != nil {
			closeClients(out)
			return nil, fmt.Errorf("client of %s's proxy %s: %w", dc, addr, err)
		}
		out[dc] = c
	}
	return out, nil
}

// produce sends at p.Rate until ctx ends. An ordered topic's messages go
// round robin over its keys, each key's in sequence; a failed send is
// recorded and its key moves on to the next sequence number.
func produce(ctx context.Context, c *client.Client, p Producer, t TopicLoad, id int, rec *recorder) {
	pr := c.NewProducer()
	lim := rate.NewLimiter(rate.Limit(p.Rate), 1)
	keys := max(t.Keys, 1)
	seqs := make([]int, keys)
	body := make([]byte, max(p.Size, 16))
	for n := 0; ; n++ {
		if lim.Wait(ctx) != nil {
			return
		}
		k := n % keys
		key := ""
		if t.Ordered {
			key = fmt.Sprintf("%s-p%d-k%d", p.DC, id, k)
		}
		seq := seqs[k]
		seqs[k]++
		m := &client.Message{Topic: t.Name, ShardingKey: key, Body: body,
			Properties: map[string]string{propKey: key, propSeq: strconv.Itoa(seq)}}
		sent := time.Now()
		r, err := pr.Send(ctx, m)
		if ctx.Err() != nil && err != nil {
			return // stopped mid-send: neither acked nor failed
		}
		rec.send(Send{ID: m.ID, Class: classOf(t), Topic: t.Name, Key: key, Seq: seq, Acked: err == nil, Sent: sent, At: time.Now(), DC: r.DC})
	}
}

// consumerInvisible is how long a received message stays invisible: short,
// so that a message whose receive was abandoned is delivered again within
// the drill's drain.
const consumerInvisible = 5 * time.Second

// consume receives and acks until ctx ends.
func consume(ctx context.Context, c *client.Client, cs Consumer, t TopicLoad, rec *recorder) error {
	sc, err := c.NewSimpleConsumer(cs.Group, cs.Topic, "*", client.WithConsumeFrom(client.ConsumeFromEarliest), client.WithReceiveWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer sc.Close()
	for ctx.Err() == nil {
		ms, err := sc.Receive(ctx, 32, consumerInvisible)
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond) // the DC's proxy may be down: retry shortly
			}
			continue
		}
		for _, m := range ms {
			seq, _ := strconv.Atoi(m.Properties[propSeq])
			rec.deliver(Delivery{ID: m.ID, Class: classOf(t), Key: m.Properties[propKey], Seq: seq,
				Group: cs.Group, Consumer: cs.DC, DC: m.DC, At: time.Now()})
			sc.Ack(ctx, m)
		}
	}
	return nil
}
