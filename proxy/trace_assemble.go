package proxy

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/duomq/duomq/api/brokerpb"
	"github.com/duomq/duomq/api/proxypb"
	"github.com/duomq/duomq/broker/commitlog"
	"github.com/duomq/duomq/internal/names"
)

// The brokers' internal topic of delayed records and the property naming
// where such a record goes.
const (
	scheduleTopic = "%SCHEDULE%"
	propRealTopic = "__REAL_TOPIC"
)

// tracedRec is one record a broker returned, with its groups' progress.
type tracedRec struct {
	rec    *proxypb.TracedRecord
	msg    *brokerpb.Message
	groups []*brokerpb.GroupProgress
	// group and dlq: a retry or dead-letter copy of that group.
	group string
	dlq   bool
}

// messageRecs gathers one message's records from every broker.
type messageRecs struct {
	records []tracedRec // in its topic or a mirror (or scheduled for it)
	copies  []tracedRec // retry and dead-letter copies
}

// assembleTrace merges the brokers' answers into one trace per message,
// newest first. subscribers names the groups subscribing to a topic.
func assembleTrace(hits []brokerHit, subscribers func(topic string) []string) []*proxypb.MessageTrace {
	byID := map[string]*messageRecs{}
	for _, h := range hits {
		traces := h.res.GetTraces()
		for i, m := range h.res.GetMessages() {
			var tr *brokerpb.RecordTrace
			if i < len(traces) {
				tr = traces[i]
			}
			r := newTracedRec(h.b, m, tr)
			id := m.GetId()
			if r.group != "" {
				id = m.GetProperties()[propOriginID]
			}
			mr := byID[id]
			if mr == nil {
				mr = &messageRecs{}
				byID[id] = mr
			}
			if r.group != "" {
				mr.copies = append(mr.copies, r)
			} else {
				mr.records = append(mr.records, r)
			}
		}
	}
	out := make([]*proxypb.MessageTrace, 0, len(byID))
	for id, mr := range byID {
		out = append(out, mr.trace(id, subscribers))
	}
	slices.SortFunc(out, func(a, b *proxypb.MessageTrace) int {
		return cmp.Or(cmp.Compare(firstStored(b), firstStored(a)), cmp.Compare(a.GetId(), b.GetId()))
	})
	return out
}

func newTracedRec(b brokerRef, m *brokerpb.Message, tr *brokerpb.RecordTrace) tracedRec {
	props := m.GetProperties()
	rec := &proxypb.TracedRecord{
		Dc: b.DC, Broker: b.Name, StoredIn: m.GetTopic(), QueueId: m.GetQueueId(), Offset: m.GetQueueOffset(),
		Id: m.GetId(), StoreTimeUnixNano: m.GetStoreTimeUnixNano(), Epoch: m.GetEpoch(),
		Replicated: m.GetFlags()&commitlog.FlagReplicated != 0, ReplicatedAtUnixNano: tr.GetReplicatedAtUnixNano(),
		Scheduled: m.GetTopic() == scheduleTopic,
	}
	if n, err := strconv.Atoi(props[propReconsumeTimes]); err == nil {
		rec.ReconsumeTimes = int32(n)
	}
	if n, err := strconv.ParseInt(props[propDeliverAt], 10, 64); err == nil {
		rec.DeliverAtUnixNano = n
	}
	r := tracedRec{rec: rec, msg: m, groups: tr.GetGroups()}
	dest := m.GetTopic()
	if rec.Scheduled {
		dest = props[propRealTopic]
	}
	if g, ok := strings.CutPrefix(dest, names.RetryPrefix); ok {
		r.group = g
	} else if g, ok := strings.CutPrefix(dest, names.DLQPrefix); ok {
		r.group, r.dlq = g, true
	}
	return r
}

// trace builds the message's trace: its records oldest first (the
// original before its copies in other DCs), and every group's progress.
func (mr *messageRecs) trace(id string, subscribers func(string) []string) *proxypb.MessageTrace {
	byStore := func(a, b tracedRec) int {
		return cmp.Or(cmp.Compare(a.rec.GetStoreTimeUnixNano(), b.rec.GetStoreTimeUnixNano()),
			boolOrder(a.rec.GetReplicated(), b.rec.GetReplicated()),
			cmp.Compare(a.rec.GetDc(), b.rec.GetDc()), cmp.Compare(a.rec.GetBroker(), b.rec.GetBroker()))
	}
	slices.SortFunc(mr.records, byStore)
	slices.SortFunc(mr.copies, func(a, b tracedRec) int {
		return cmp.Or(cmp.Compare(a.rec.GetReconsumeTimes(), b.rec.GetReconsumeTimes()), byStore(a, b))
	})
	first := mr.first()
	t := &proxypb.MessageTrace{
		Id: id, Topic: userTopic(first.msg), Keys: first.msg.GetKeys(), Tag: first.msg.GetTag(),
		BornDc: first.msg.GetBornDc(), BornTimeUnixNano: first.msg.GetBornTimeUnixNano(),
	}
	if len(mr.records) > 0 {
		t.DeliverAtUnixNano = first.rec.GetDeliverAtUnixNano()
	}
	for _, r := range mr.records {
		t.Records = append(t.Records, r.rec)
	}
	subscribed := subscribers(t.Topic)
	for _, g := range mr.groupNames(subscribed) {
		t.Groups = append(t.Groups, mr.groupTrace(g, slices.Contains(subscribed, g)))
	}
	return t
}

// first is the record the message's fields come from: its oldest record,
// else (the original is gone) its oldest copy.
func (mr *messageRecs) first() tracedRec {
	if len(mr.records) > 0 {
		return mr.records[0]
	}
	return mr.copies[0]
}

// groupNames are the subscribers and every group with progress on a
// record or a copy, sorted.
func (mr *messageRecs) groupNames(subscribed []string) []string {
	out := slices.Clone(subscribed)
	for _, r := range mr.records {
		for _, g := range r.groups {
			out = append(out, g.GetGroup())
		}
	}
	for _, c := range mr.copies {
		out = append(out, c.group)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (mr *messageRecs) groupTrace(group string, subscribed bool) *proxypb.GroupTrace {
	gt := &proxypb.GroupTrace{Group: group, Subscribed: subscribed}
	for _, r := range mr.records {
		if !r.rec.GetScheduled() {
			gt.Deliveries = append(gt.Deliveries, r.progress(group))
		}
	}
	for _, c := range mr.copies {
		switch {
		case c.group != group:
		case c.dlq:
			gt.DeadLetters = append(gt.DeadLetters, c.progress(group))
		default:
			gt.Retries = append(gt.Retries, c.progress(group))
		}
	}
	return gt
}

// progress is the group's progress on the record (none known: no
// committed offset, nothing in flight).
func (r tracedRec) progress(group string) *proxypb.RecordProgress {
	out := &proxypb.RecordProgress{Record: r.rec, CommittedOffset: -1}
	i := slices.IndexFunc(r.groups, func(g *brokerpb.GroupProgress) bool { return g.GetGroup() == group })
	if i < 0 {
		return out
	}
	g := r.groups[i]
	out.CommittedOffset, out.Consumed = g.GetCommittedOffset(), g.GetConsumed()
	out.ConsumedAfterUnixNano, out.ConsumedByUnixNano = g.GetConsumedAfterUnixNano(), g.GetConsumedByUnixNano()
	out.Synced, out.InFlight, out.Attempt = g.GetSynced(), g.GetInFlight(), g.GetAttempt()
	out.InvisibleUntilUnixNano, out.Settled = g.GetInvisibleUntilUnixNano(), g.GetSettled()
	return out
}

// userTopic is the topic a record belongs to: its own, the one it is a
// mirror of, the one it is scheduled for, or a copy's origin.
func userTopic(m *brokerpb.Message) string {
	props := m.GetProperties()
	t := m.GetTopic()
	switch {
	case props[propOriginTopic] != "":
		t = props[propOriginTopic]
	case t == scheduleTopic:
		t = props[propRealTopic]
	}
	if _, of, ok := names.ParseMirror(t); ok {
		return of
	}
	return t
}

// firstStored is when the message was first stored anywhere.
func firstStored(t *proxypb.MessageTrace) int64 {
	if rs := t.GetRecords(); len(rs) > 0 {
		return rs[0].GetStoreTimeUnixNano()
	}
	var first int64
	for _, g := range t.GetGroups() {
		for _, c := range slices.Concat(g.GetRetries(), g.GetDeadLetters()) {
			if s := c.GetRecord().GetStoreTimeUnixNano(); first == 0 || s < first {
				first = s
			}
		}
	}
	return first
}

// boolOrder sorts false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
