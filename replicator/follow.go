package replicator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/internal/logging"
	"github.com/duomq/duomq/internal/names"
)

// cursor is a worker's position in its DC's copy of the queue; unknown
// (re-read from the broker) after any failure or change of broker.
type cursor struct {
	addr      string // the local broker the position is of
	next      int64
	lastEpoch uint64
	known     bool
}

// recordError is a failed step's error naming the first record it could
// not copy: the trace id of the step's log line.
type recordError struct {
	id  string
	err error
}

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// follow copies one queue from leader (a DC) until ctx ends.
func (r *Replicator) follow(ctx context.Context, ref queueRef, leader string) {
	log := r.log.With("topic", ref.topic, "copy", ref.dst, "queue", ref.queue, "leader-dc", leader)
	log.Info("following queue")
	var cur cursor
	for ctx.Err() == nil {
		step, err := r.step(ctx, ref, leader, &cur)
		if err == nil {
			continue
		}
		cur.known = false
		if ctx.Err() != nil {
			break
		}
		r.m.errors.WithLabelValues(step).Inc()
		lctx := ctx
		if re := (*recordError)(nil); errors.As(err, &re) {
			lctx = logging.WithTraceID(ctx, re.id)
		}
		log.DebugContext(lctx, "replication step failed", "step", step, "err", err)
		if !sleep(ctx, r.cfg.RetryBackoff) {
			break
		}
	}
	log.Info("stopped following queue")
}

// step makes one fetch and applies it; it names the step that failed.
func (r *Replicator) step(ctx context.Context, ref queueRef, leader string, cur *cursor) (string, error) {
	src, err := r.brokerFor(leader, ref.place())
	if err != nil {
		return "resolve", err
	}
	dst, err := r.brokerFor(r.cfg.DC, ref.queue)
	follower := r.cfg.DC
	if ref.standby != "" {
		dst, err = r.standbyFor(ref)
		follower = names.StandbyID(r.cfg.DC, ref.standby)
	}
	if err != nil {
		return "resolve", err
	}
	local, err := r.dial.Client(dst.Address)
	if err != nil {
		return "dial", err
	}
	if !cur.known || cur.addr != dst.Address {
		if err := r.readCursor(ctx, local, ref, dst.Address, cur); err != nil {
			return "state", err
		}
	}
	remote, err := r.dial.Client(src.Address)
	if err != nil {
		return "dial", err
	}
	res, err := remote.ReplicaFetch(ctx, &brokerpb.ReplicaFetchRequest{
		Topic: ref.topic, QueueId: ref.srcQueue(), Offset: cur.next, LastEpoch: cur.lastEpoch,
		MaxMessages: int32(r.cfg.FetchMaxMessages), WaitMillis: r.cfg.FetchWait.Milliseconds(), FollowerDc: follower,
	})
	if err != nil {
		return "fetch", err
	}
	if res.GetDiverging() {
		return r.truncate(ctx, local, ref, res, cur)
	}
	return r.append(ctx, local, ref, res, cur)
}

func (r *Replicator) readCursor(ctx context.Context, local brokerpb.BrokerClient, ref queueRef, addr string, cur *cursor) error {
	st, err := local.ReplicaState(ctx, &brokerpb.ReplicaStateRequest{Topic: ref.dst})
	if err != nil {
		return err
	}
	for _, q := range st.GetQueues() {
		if q.GetQueueId() == ref.queue {
			*cur = cursor{addr: addr, next: q.GetNextOffset(), lastEpoch: q.GetLastEpoch(), known: true}
			return nil
		}
	}
	return fmt.Errorf("broker %s has no queue %d of %s", addr, ref.queue, ref.dst)
}

func (r *Replicator) truncate(ctx context.Context, local brokerpb.BrokerClient, ref queueRef, res *brokerpb.ReplicaFetchResponse, cur *cursor) (string, error) {
	tr, err := local.ReplicaTruncate(ctx, &brokerpb.ReplicaTruncateRequest{
		Topic: ref.dst, QueueId: ref.queue, Offset: res.GetTruncateTo(), LeaderEpoch: res.GetEpoch(),
		Reason: fmt.Sprintf("diverged from the leader (epoch %d ends at offset %d there)", res.GetEpoch(), res.GetTruncateTo()),
	})
	if err != nil {
		return "truncate", err
	}
	cur.known = false
	r.m.truncated.WithLabelValues(ref.dst).Add(float64(tr.GetRemoved()))
	r.log.Warn("divergent tail truncated before following", "topic", ref.dst, "queue", ref.queue,
		"removed", tr.GetRemoved(), "quarantine", tr.GetQuarantineFile())
	return "", nil
}

func (r *Replicator) append(ctx context.Context, local brokerpb.BrokerClient, ref queueRef, res *brokerpb.ReplicaFetchResponse, cur *cursor) (string, error) {
	msgs := res.GetMessages()
	q := strconv.Itoa(int(ref.queue))
	if len(msgs) > 0 {
		if ref.dst != ref.topic {
			for _, m := range msgs {
				m.Topic = ref.dst // a mirror holds the records under its own name
				m.QueueId = ref.queue
			}
		}
		ar, err := local.ReplicaAppend(ctx, &brokerpb.ReplicaAppendRequest{Topic: ref.dst, QueueId: ref.queue, Offset: cur.next, Messages: msgs})
		if err != nil {
			return "append", &recordError{id: msgs[0].GetId(), err: err}
		}
		cur.next, cur.lastEpoch = ar.GetNextOffset(), msgs[len(msgs)-1].GetEpoch()
		r.m.replicated.WithLabelValues(ref.dst).Add(float64(len(msgs)))
	}
	lag := max(res.GetLeaderNextOffset()-cur.next, 0)
	if ref.standby != "" {
		r.m.standbyLag.WithLabelValues(ref.dst, q, ref.standby).Set(float64(lag))
		return "", nil
	}
	r.m.lagMessages.WithLabelValues(ref.dst, q).Set(float64(lag))
	age := 0.0
	if lag > 0 && len(msgs) > 0 {
		age = time.Since(time.Unix(0, msgs[len(msgs)-1].GetStoreTimeUnixNano())).Seconds()
	}
	r.m.lagSeconds.WithLabelValues(ref.dst, q).Set(age)
	r.m.lagBytes.WithLabelValues(ref.dst, q).Set(float64(res.GetLagBytes()))
	return "", nil
}
