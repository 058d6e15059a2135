package proxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/dr/meta"
	"github.com/duomq/duomq/internal/rpcerr"
)

// sendUnordered writes msgs to the DCs writeDCs orders, moving to the next
// DC with the messages the previous one could not take. A broker's refusal
// of a message (too large, malformed) ends the send with that refusal.
func (p *Proxy) sendUnordered(ctx context.Context, t meta.Topic, msgs []*brokerpb.MessageInput, idempotent bool) ([]*proxypb.SendResult, error) {
	order, reasons := p.writeDCs(t.Name)
	results := make([]*proxypb.SendResult, len(msgs))
	for _, choice := range order {
		pending := pendingIndexes(results)
		if len(pending) == 0 {
			break
		}
		why, err := p.sendInDC(ctx, t, choice.dc, msgs, pending, idempotent, results)
		if err != nil {
			return nil, err
		}
		reason := choice.reason
		if reason == "" {
			reason = strings.Join(reasons, "; ")
		}
		for _, i := range pending {
			if r := results[i]; r != nil && r.Dc != p.cfg.DC {
				r.Fallback, r.FallbackReason = true, reason
			}
		}
		if why != "" {
			reasons = append(reasons, why)
		}
	}
	if pending := pendingIndexes(results); len(pending) > 0 {
		if len(reasons) == 0 {
			reasons = []string{"no DC is configured"}
		}
		return nil, errorf(ErrUnavailable, "topic %q: %d of %d messages could not be written in any DC: %s",
			t.Name, len(pending), len(msgs), strings.Join(reasons, "; "))
	}
	reason := ""
	for _, r := range results {
		if r.Fallback {
			reason = r.FallbackReason
			break
		}
	}
	p.noteFallback(t.Name, reason)
	return results, nil
}

// noteFallback logs when a topic's writes start going elsewhere, change
// reason, or come back: once per change, not once per send.
func (p *Proxy) noteFallback(topic, reason string) {
	p.fallbackMu.Lock()
	last := p.fallbacks[topic]
	if last == reason {
		p.fallbackMu.Unlock()
		return
	}
	if reason == "" {
		delete(p.fallbacks, topic)
	} else {
		p.fallbacks[topic] = reason
	}
	p.fallbackMu.Unlock()
	if reason == "" {
		p.log.Info("unordered writes back in the proxy's dc", "topic", topic)
		return
	}
	p.log.Warn("unordered writes go to another dc", "topic", topic, "reason", reason)
}

func pendingIndexes(results []*proxypb.SendResult) []int {
	var out []int
	for i, r := range results {
		if r == nil {
			out = append(out, i)
		}
	}
	return out
}

// sendInDC writes the pending messages to dc's brokers and fills their
// results. It returns why some could not be written there ("" if all
// were), or the error of a broker that refused a message.
func (p *Proxy) sendInDC(ctx context.Context, t meta.Topic, dc string, msgs []*brokerpb.MessageInput, pending []int, idempotent bool, results []*proxypb.SendResult) (string, error) {
	all, err := p.brokersOf(ctx, t.Name, dc)
	if err != nil {
		return err.Error(), nil
	}
	var writable []brokerRef
	for _, b := range all {
		if b.writable() {
			writable = append(writable, b)
		}
	}
	if len(writable) == 0 {
		return fmt.Sprintf("no writable broker of topic %s in %s", t.Name, dc), nil
	}
	if p.allOpen(writable) {
		return fmt.Sprintf("every broker of topic %s in %s is failing (circuit breakers open)", t.Name, dc), nil
	}
	// Groups of message indexes, each sent to one broker, starting at a
	// broker index: by id hash when idempotent (a retry reaches the same
	// broker, which drops the duplicate), else one group round robin.
	groups := map[int][]int{}
	if idempotent {
		for _, i := range pending {
			start := int(hash32(msgs[i].GetId()) % uint32(len(writable)))
			groups[start] = append(groups[start], i)
		}
	} else {
		groups[int(p.picker.next("send/"+t.Name)%uint64(len(writable)))] = pending
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		refusal  error
	)
	sendOne := func(start int, idx []int) {
		why, err := p.sendGroup(ctx, t, writable, start, msgs, idx, idempotent, results)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && refusal == nil {
			refusal = err
		}
		if why != "" {
			failures = append(failures, why)
		}
	}
	for start, idx := range groups {
		if len(groups) == 1 {
			sendOne(start, idx)
			break
		}
		wg.Go(func() { sendOne(start, idx) })
	}
	wg.Wait()
	if refusal != nil {
		return "", refusal
	}
	if len(failures) > 0 {
		return fmt.Sprintf("every broker of topic %s in %s failed: %s", t.Name, dc, strings.Join(failures, "; ")), nil
	}
	return "", nil
}

func (p *Proxy) allOpen(bs []brokerRef) bool {
	for _, b := range bs {
		if !p.brokers.open(b) {
			return false
		}
	}
	return true
}

// sendGroup sends the messages idx as one batch to writable[start], or to
// the next broker while a broker fails. Each message's result is written
// to its own slot, so concurrent groups share results safely.
func (p *Proxy) sendGroup(ctx context.Context, t meta.Topic, writable []brokerRef, start int, msgs []*brokerpb.MessageInput, idx []int, idempotent bool, results []*proxypb.SendResult) (string, error) {
	batch := make([]*brokerpb.MessageInput, len(idx))
	for j, i := range idx {
		batch[j] = msgs[i]
	}
	req := &brokerpb.SendRequest{Topic: t.Name, QueueId: -1, Messages: batch, Idempotent: idempotent}
	var lastErr error
	for k := range writable {
		b := writable[(start+k)%len(writable)]
		if p.brokers.open(b) {
			continue
		}
		if replicatedUnordered(t) {
			q, ok := p.replicatedQueue(t, b)
			if !ok {
				continue
			}
			req.QueueId = q
		}
		res, err := p.brokerSend(ctx, b, req)
		if err == nil {
			for j, i := range idx {
				results[i] = sendResult(t.Name, b, res.GetResults()[j])
			}
			return "", nil
		}
		if !tryElsewhere(err) {
			return "", err
		}
		lastErr = err
	}
	if lastErr == nil {
		return "circuit breakers open", nil
	}
	return lastErr.Error(), nil
}

// replicatedUnordered reports whether an unordered topic's queues are
// copied to the other DCs' mirrors.
func replicatedUnordered(t meta.Topic) bool {
	return !t.Ordered && t.Replication != "" && t.Replication != meta.ReplicationNone
}

// replicatedQueue picks the queue of a replicated unordered topic to write
// on broker b: the topic has Queues logical queues per DC, queue q on the
// DC's registered broker q mod n (meta.Place, as for ordered topics),
// which is what the replicators copy. It fails when b is not live or hosts no queue.
func (p *Proxy) replicatedQueue(t meta.Topic, b brokerRef) (int32, bool) {
	slots := p.meta.Placement(b.DC)
	idx := slices.IndexFunc(slots, func(s meta.Slot) bool { return s.Live && s.Name == b.Name })
	if idx < 0 || idx >= t.Queues {
		return 0, false
	}
	mine := (t.Queues - idx + len(slots) - 1) / len(slots) // queues idx, idx+n, ...
	// A rotation per topic and broker: one shared by all brokers would
	// give each broker the same few queues when sends alternate brokers.
	return int32(idx + len(slots)*int(p.picker.next("queue/"+t.Name+"/"+b.Name)%uint64(mine))), true
}

// brokerSend is one broker Send, checked to answer every message.
func (p *Proxy) brokerSend(ctx context.Context, b brokerRef, req *brokerpb.SendRequest) (*brokerpb.SendResponse, error) {
	cctx, cancel := p.callCtx(ctx, 0)
	defer cancel()
	var res *brokerpb.SendResponse
	err := p.call(cctx, b, "send", func(ctx context.Context, c brokerpb.BrokerClient) error {
		var err error
		res, err = c.Send(ctx, req)
		return err
	})
	if err == nil && len(res.GetResults()) != len(req.GetMessages()) {
		return nil, fmt.Errorf("broker %s answered %d results for %d messages", b.Name, len(res.GetResults()), len(req.GetMessages()))
	}
	return res, err
}

// tryElsewhere reports errors after which another broker may take the
// write: the broker is unreachable, read-only, or has not created the
// topic yet.
func tryElsewhere(err error) bool {
	if brokerFailed(err) {
		return true
	}
	switch rpcerr.Reason(err) {
	case "WRITE_FORBIDDEN", reasonBrokerTopicNotFound:
		return true
	}
	return status.Code(err) == codes.Unavailable
}

func sendResult(topic string, b brokerRef, r *brokerpb.SendResult) *proxypb.SendResult {
	return &proxypb.SendResult{
		Id: r.GetId(), Topic: topic, Dc: b.DC, Broker: b.Name,
		QueueId: r.GetQueueId(), Offset: r.GetQueueOffset(), Duplicate: r.GetDuplicate(),
	}
}
