package drills

import (
	"sort"
	"time"
)

// Class is how a topic's messages are expected to behave.
type Class string

// Topic classes, scored separately.
const (
	OrderedSync  Class = "ordered-sync"
	OrderedAsync Class = "ordered-async"
	Unordered    Class = "unordered"
)

// Send is one send attempt as the workload saw it.
type Send struct {
	ID    string
	Class Class
	Topic string
	// Key and Seq: the sharding key and the message's number in the key's
	// sequence (0, 1, 2, ...); Key is empty for unordered messages.
	Key string
	Seq int
	// Acked: the send succeeded (At is when the answer came, Sent when
	// the attempt began).
	Acked bool
	Sent  time.Time
	At    time.Time
	// DC is the DC that acked it.
	DC string
}

// Delivery is one message handed to a consumer.
type Delivery struct {
	ID    string
	Class Class
	Key   string
	Seq   int
	// Group is the consumer group: each group gets every message once.
	Group    string
	Consumer string
	DC       string
	At       time.Time
}

// Window is a span of the drill: a fault from its injection to its undoing
// (or to the drill's end).
type Window struct {
	Name       string
	Start, End time.Time
}

// Figures are the checker's result for one class of topics.
type Figures struct {
	Class      Class `json:"class"`
	Attempted  int   `json:"sends_attempted"`
	Acked      int   `json:"sends_acked"`
	Deliveries int   `json:"deliveries"`
	// Lost: acked messages never delivered.
	Lost int `json:"lost_acked"`
	// Duplicates: deliveries beyond the first of a message.
	Duplicates int `json:"duplicates"`
	// Reordered: deliveries of a key whose sequence number is lower than
	// one already delivered to the same consumer group and never
	// delivered before (a redelivery of an old message is a duplicate,
	// not a reorder).
	Reordered int `json:"reordered"`
	// UnackedDelivered: messages delivered whose send was never acked
	// (allowed: the ack was lost), counted for the report.
	UnackedDelivered int `json:"unacked_delivered"`
	// RPOSeconds: the span of time over which the lost messages had been
	// acked (from the first lost ack to the last; 0 when nothing was
	// lost). With Lost it is the RPO, in seconds and in messages.
	RPOSeconds float64 `json:"rpo_seconds"`
}

// RTO is the longest time without a successful operation, per fault and
// topic class (unordered writes going on in one DC must not hide that
// the ordered topics stopped).
type RTO struct {
	Fault string `json:"fault"`
	Class Class  `json:"class"`
	// Send and Receive: the longest gaps between successful sends (acks)
	// and between deliveries that overlap the fault's window; what
	// follows the fault's start counts until the first success after it.
	Send    time.Duration `json:"send_ns"`
	Receive time.Duration `json:"receive_ns"`
	// CatchUp: from the fault's end until every message of the class
	// acked before it was delivered (0 when they all were by then).
	CatchUp time.Duration `json:"catch_up_ns"`
}

// OutsideFaults names the RTO entry of the time outside every fault
// window: downtime the drill did not cause.
const OutsideFaults = "outside faults"

// Check scores the records: per class the figures, and per fault window
// the recovery times. It uses nothing but the records.
func Check(sends []Send, deliveries []Delivery, faults []Window) ([]Figures, []RTO) {
	byClass := map[Class]*Figures{}
	fig := func(c Class) *Figures {
		if byClass[c] == nil {
			byClass[c] = &Figures{Class: c}
		}
		return byClass[c]
	}
	acked := map[string]bool{}
	for _, s := range sends {
		f := fig(s.Class)
		f.Attempted++
		if s.Acked && !acked[s.ID] {
			f.Acked++
			acked[s.ID] = true
		}
	}
	ds := append([]Delivery(nil), deliveries...)
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].At.Before(ds[j].At) })
	seen := map[string]bool{}      // group, id
	delivered := map[string]bool{} // id, to any group
	last := map[string]int{}       // group, key -> highest seq delivered
	for _, d := range ds {
		f := fig(d.Class)
		f.Deliveries++
		if seen[d.Group+"\x00"+d.ID] {
			f.Duplicates++
			continue
		}
		seen[d.Group+"\x00"+d.ID] = true
		if !acked[d.ID] && !delivered[d.ID] {
			f.UnackedDelivered++
		}
		delivered[d.ID] = true
		if d.Key == "" || d.Class == Unordered {
			continue
		}
		gk := d.Group + "\x00" + d.Key
		if hi, ok := last[gk]; ok && d.Seq < hi {
			f.Reordered++
		} else {
			last[gk] = d.Seq
		}
	}
	counted := map[string]bool{}
	lostSpan := map[Class][2]time.Time{}
	for _, s := range sends {
		if s.Acked && !delivered[s.ID] && !counted[s.ID] {
			counted[s.ID] = true
			fig(s.Class).Lost++
			sp, ok := lostSpan[s.Class]
			if !ok || s.At.Before(sp[0]) {
				sp[0] = s.At
			}
			if !ok || s.At.After(sp[1]) {
				sp[1] = s.At
			}
			lostSpan[s.Class] = sp
		}
	}
	for c, sp := range lostSpan {
		fig(c).RPOSeconds = sp[1].Sub(sp[0]).Seconds()
	}
	var out []Figures
	for _, c := range []Class{OrderedSync, OrderedAsync, Unordered} {
		if f := byClass[c]; f != nil {
			out = append(out, *f)
		}
	}
	return out, recoveryTimes(sends, ds, faults)
}

// recoveryTimes measures, per fault and class, the longest gap in acks
// and in deliveries that overlaps the fault's window and the consumers'
// catch-up after it; and, per class, the longest gaps outside every
// window (OutsideFaults).
func recoveryTimes(sends []Send, ds []Delivery, faults []Window) []RTO {
	acks, dels := map[Class][]time.Time{}, map[Class][]time.Time{}
	firstDelivery := map[string]time.Time{}
	for _, d := range ds { // ds is sorted by time
		dels[d.Class] = append(dels[d.Class], d.At)
		if _, ok := firstDelivery[d.ID]; !ok {
			firstDelivery[d.ID] = d.At
		}
	}
	for _, s := range sends {
		if s.Acked {
			acks[s.Class] = append(acks[s.Class], s.At)
		}
	}
	var out []RTO
	for _, c := range []Class{OrderedSync, OrderedAsync, Unordered} {
		sortTimes(acks[c])
		sortTimes(dels[c])
	}
	for _, w := range faults {
		for _, c := range []Class{OrderedSync, OrderedAsync, Unordered} {
			if len(acks[c]) == 0 && len(dels[c]) == 0 {
				continue
			}
			out = append(out, RTO{Fault: w.Name, Class: c, Send: longestGap(acks[c], w), Receive: longestGap(dels[c], w),
				CatchUp: catchUp(sends, firstDelivery, c, w.End)})
		}
	}
	if len(faults) == 0 {
		return out
	}
	for _, c := range []Class{OrderedSync, OrderedAsync, Unordered} {
		if len(acks[c]) > 0 {
			out = append(out, RTO{Fault: OutsideFaults, Class: c, Send: gapOutside(acks[c], faults), Receive: gapOutside(dels[c], faults)})
		}
	}
	return out
}

// catchUp is how long after end the last message of class c acked
// before end was first delivered (messages never delivered are lost,
// counted elsewhere).
func catchUp(sends []Send, first map[string]time.Time, c Class, end time.Time) time.Duration {
	var d time.Duration
	for _, s := range sends {
		if s.Class != c || !s.Acked || s.At.After(end) {
			continue
		}
		if at, ok := first[s.ID]; ok {
			d = max(d, at.Sub(end))
		}
	}
	return d
}

// gapOutside is the longest gap between consecutive events ts that lies
// wholly outside every window: the system's downtime the drill did not
// cause.
func gapOutside(ts []time.Time, faults []Window) time.Duration {
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		a, b := ts[i-1], ts[i]
		inside := false
		for _, w := range faults {
			if a.Before(w.End) && b.After(w.Start) {
				inside = true
				break
			}
		}
		if !inside {
			gap = max(gap, b.Sub(a))
		}
	}
	return gap
}

func sortTimes(ts []time.Time) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
}

// longestGap is the longest interval between consecutive events that
// overlaps w, the first one starting at w.Start at the earliest (the
// outage is measured from the fault, not from the last success before
// it). With no event after w.Start, the gap runs to w.End.
func longestGap(ts []time.Time, w Window) time.Duration {
	var gap time.Duration
	prev := w.Start
	for _, t := range ts {
		if !t.After(w.Start) {
			continue
		}
		gap = max(gap, t.Sub(prev))
		prev = t
		if t.After(w.End) {
			return gap
		}
	}
	return max(gap, w.End.Sub(prev))
}
