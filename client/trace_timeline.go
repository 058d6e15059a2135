package client

import (
	"fmt"
	"strings"
	"time"
)

// EventKind classifies a step of a message's path.
type EventKind string

// Steps of a message's path, in the order they usually happen.
const (
	EventBorn         EventKind = "born"
	EventScheduled    EventKind = "scheduled"
	EventStored       EventKind = "stored"
	EventReplicated   EventKind = "replicated"
	EventDelivered    EventKind = "delivered" // handed to a consumer, not acked (yet)
	EventAcked        EventKind = "acked"
	EventSynced       EventKind = "synced" // a group's offset copied to another DC
	EventRetried      EventKind = "retried"
	EventDeadLettered EventKind = "dead-lettered"
	EventRedriven     EventKind = "redriven"
	EventPending      EventKind = "pending" // a group has not had it yet
)

// TraceEvent is one step of a message's path.
type TraceEvent struct {
	// At is when it happened; zero when unknown. For acknowledgements the
	// brokers know bounds: after Earliest, by At.
	At       time.Time `json:"at,omitzero"`
	Earliest time.Time `json:"earliest,omitzero"`
	DC       string    `json:"dc,omitempty"`
	Group    string    `json:"group,omitempty"`
	Kind     EventKind `json:"kind"`
	Text     string    `json:"text"`
}

// Timeline tells the message's path in order: born, stored (or
// scheduled), replicated, then for each group (by name) its deliveries,
// retries and dead letter.
func (m *MessageTrace) Timeline() []TraceEvent {
	out := []TraceEvent{{At: m.BornTime, DC: m.BornDC, Kind: EventBorn, Text: "born in " + dashIfEmpty(m.BornDC)}}
	for _, r := range m.Records {
		out = append(out, recordEvent(r))
	}
	for i := range m.Groups {
		out = append(out, m.Groups[i].events()...)
	}
	return out
}

func recordEvent(r TracedRecord) TraceEvent {
	where := fmt.Sprintf("%s: %s queue %d offset %d", r.Broker, r.StoredIn, r.Queue, r.Offset)
	switch {
	case r.Scheduled:
		return TraceEvent{At: r.StoreTime, DC: r.DC, Kind: EventScheduled,
			Text: fmt.Sprintf("delayed on %s until %s", r.Broker, r.DeliverAt.Format(time.RFC3339Nano))}
	case r.Replicated && r.ReplicatedAt.IsZero():
		return TraceEvent{DC: r.DC, Kind: EventReplicated, Text: "replicated to " + where + " (time not recorded)"}
	case r.Replicated:
		return TraceEvent{At: r.ReplicatedAt, DC: r.DC, Kind: EventReplicated,
			Text: fmt.Sprintf("replicated to %s, %s after it was stored", where, roundDuration(r.ReplicatedAt.Sub(r.StoreTime)))}
	}
	return TraceEvent{At: r.StoreTime, DC: r.DC, Kind: EventStored, Text: "stored on " + where}
}

// events are the group's steps: its deliveries of each record, its retry
// copies and their deliveries, its dead letter; or that it has not had
// the message yet.
func (g *GroupTrace) events() []TraceEvent {
	redelivered := len(g.Retries)+len(g.DeadLetters) > 0
	var out []TraceEvent
	for _, d := range g.Deliveries {
		out = append(out, g.progressEvents(d, 1, redelivered)...)
	}
	for i, r := range g.Retries {
		delivery := r.Record.ReconsumeTimes + 1
		text := fmt.Sprintf("redelivery #%d queued in %s on %s offset %d", delivery, r.Record.StoredIn, r.Record.Broker, r.Record.Offset)
		if r.Record.Scheduled {
			text = fmt.Sprintf("redelivery #%d waits for its backoff on %s until %s", delivery, r.Record.Broker, r.Record.DeliverAt.Format(time.RFC3339Nano))
		}
		out = append(out, TraceEvent{At: r.Record.StoreTime, DC: r.Record.DC, Group: g.Group, Kind: EventRetried, Text: text})
		last := i == len(g.Retries)-1 && len(g.DeadLetters) == 0
		out = append(out, g.progressEvents(r, delivery, !last)...)
	}
	for _, d := range g.DeadLetters {
		out = append(out, TraceEvent{At: d.Record.StoreTime, DC: d.Record.DC, Group: g.Group, Kind: EventDeadLettered,
			Text: fmt.Sprintf("dead-lettered after %d deliveries: %s on %s offset %d", d.Record.ReconsumeTimes, d.Record.StoredIn, d.Record.Broker, d.Record.Offset)})
		if d.Consumed {
			out = append(out, g.at(d, EventRedriven, "re-driven from the dead-letter queue"))
		}
	}
	if len(out) == 0 {
		out = append(out, TraceEvent{Group: g.Group, Kind: EventPending, Text: g.pendingText()})
	}
	return out
}

// progressEvents tells what the group did with one record, its
// delivery-th delivery; redelivered: it was not acked but copied on.
func (g *GroupTrace) progressEvents(p RecordProgress, delivery int, redelivered bool) []TraceEvent {
	name := g.Group
	switch {
	case p.InFlight:
		return []TraceEvent{{DC: p.Record.DC, Group: name, Kind: EventDelivered,
			Text: fmt.Sprintf("delivered to %s (attempt %d), not acked yet; delivered again after %s", name, p.Attempt, p.InvisibleUntil.Format(time.RFC3339Nano))}}
	case p.Settled:
		return []TraceEvent{{DC: p.Record.DC, Group: name, Kind: EventAcked,
			Text: fmt.Sprintf("acked by %s; its committed offset waits for an earlier message", name)}}
	case !p.Consumed:
		return nil
	case p.Synced:
		return []TraceEvent{g.at(p, EventSynced, fmt.Sprintf("offset of %s synced here: consumed in another DC", name))}
	case redelivered:
		return []TraceEvent{g.at(p, EventDelivered, fmt.Sprintf("delivered to %s (delivery #%d), not acked in time: redelivered", name, delivery))}
	}
	return []TraceEvent{g.at(p, EventAcked, fmt.Sprintf("acked by %s (delivery #%d)", name, delivery))}
}

// at is an event at the time the group's offset passed the record.
func (g *GroupTrace) at(p RecordProgress, kind EventKind, text string) TraceEvent {
	e := TraceEvent{At: p.ConsumedBy, Earliest: p.ConsumedAfter, DC: p.Record.DC, Group: g.Group, Kind: kind, Text: text}
	switch {
	case p.ConsumedBy.IsZero():
		e.Text += " (time not remembered by the broker)"
	case p.ConsumedBy.Sub(p.ConsumedAfter) > time.Second:
		e.Text += fmt.Sprintf(" (between %s and then)", p.ConsumedAfter.Format(time.RFC3339Nano))
	}
	return e
}

func (g *GroupTrace) pendingText() string {
	var where []string
	for _, d := range g.Deliveries {
		if d.CommittedOffset >= 0 {
			where = append(where, fmt.Sprintf("%s: offset %d of queue %d, the message is at %d", d.Record.DC, d.CommittedOffset, d.Record.Queue, d.Record.Offset))
		}
	}
	text := "not delivered to " + g.Group + " yet"
	if len(where) > 0 {
		text += " (committed " + strings.Join(where, "; ") + ")"
	} else {
		text += " (the group has not read the queue)"
	}
	if !g.Subscribed {
		text += "; the group does not subscribe to the topic"
	}
	return text
}

// Outcome sums up what the group did with the message: "acked",
// "acked after N retries", "in flight", "retrying", "dead-lettered",
// "re-driven", "acked in another DC" (only its synced offset is seen) or
// "not delivered".
func (g *GroupTrace) Outcome() string {
	if n := len(g.DeadLetters); n > 0 {
		if g.DeadLetters[n-1].Consumed {
			return "re-driven"
		}
		return "dead-lettered"
	}
	if n := len(g.Retries); n > 0 {
		last := g.Retries[n-1]
		switch {
		case last.InFlight:
			return "in flight"
		case last.Consumed || last.Settled:
			return fmt.Sprintf("acked after %d retries", n)
		}
		return "retrying"
	}
	synced := false
	for _, d := range g.Deliveries {
		switch {
		case d.InFlight:
			return "in flight"
		case d.Settled || d.Consumed && !d.Synced:
			return "acked"
		case d.Consumed:
			synced = true
		}
	}
	if synced {
		return "acked in another DC"
	}
	return "not delivered"
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
