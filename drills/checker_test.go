package drills

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// keyed builds an acked ordered send of key k, sequence seq, at ms.
func keyed(c Class, k string, seq, ms int) Send {
	return Send{ID: fmt.Sprintf("%s-%d", k, seq), Class: c, Key: k, Seq: seq, Acked: true, At: at(ms)}
}

func deliver(s Send, group string, ms int) Delivery {
	return Delivery{ID: s.ID, Class: s.Class, Key: s.Key, Seq: s.Seq, Group: group, At: at(ms)}
}

func TestCheckFigures(t *testing.T) {
	a0, a1, a2 := keyed(OrderedSync, "a", 0, 10), keyed(OrderedSync, "a", 1, 20), keyed(OrderedSync, "a", 2, 30)
	b0 := keyed(OrderedSync, "b", 0, 15)
	failed := Send{ID: "a-9", Class: OrderedSync, Key: "a", Seq: 9, At: at(40)}
	u1, u2 := Send{ID: "u1", Class: Unordered, Acked: true, At: at(5)}, Send{ID: "u2", Class: Unordered, Acked: true, At: at(6)}
	tests := []struct {
		name  string
		sends []Send
		dels  []Delivery
		want  Figures
	}{
		{"everything once, in order", []Send{a0, a1, a2, b0},
			[]Delivery{deliver(a0, "g", 50), deliver(b0, "g", 51), deliver(a1, "g", 52), deliver(a2, "g", 53)},
			Figures{Class: OrderedSync, Attempted: 4, Acked: 4, Deliveries: 4}},
		{"an acked message never delivered is lost", []Send{a0, a1, a2},
			[]Delivery{deliver(a0, "g", 50), deliver(a2, "g", 53)},
			Figures{Class: OrderedSync, Attempted: 3, Acked: 3, Deliveries: 2, Lost: 1}},
		{"a redelivery is a duplicate, not a reorder", []Send{a0, a1},
			[]Delivery{deliver(a0, "g", 50), deliver(a1, "g", 51), deliver(a0, "g", 52), deliver(a1, "g", 53)},
			Figures{Class: OrderedSync, Attempted: 2, Acked: 2, Deliveries: 4, Duplicates: 2}},
		{"an older message first seen after a newer one is reordered", []Send{a0, a1, a2},
			[]Delivery{deliver(a0, "g", 50), deliver(a2, "g", 51), deliver(a1, "g", 52)},
			Figures{Class: OrderedSync, Attempted: 3, Acked: 3, Deliveries: 3, Reordered: 1}},
		{"each group gets every message", []Send{a0, a1},
			[]Delivery{deliver(a0, "g1", 50), deliver(a0, "g2", 50), deliver(a1, "g2", 51), deliver(a1, "g1", 52)},
			Figures{Class: OrderedSync, Attempted: 2, Acked: 2, Deliveries: 4}},
		{"a failed send is attempted, not acked; delivered anyway, it is counted", []Send{a0, failed},
			[]Delivery{deliver(a0, "g", 50), deliver(failed, "g", 51)},
			Figures{Class: OrderedSync, Attempted: 2, Acked: 1, Deliveries: 2, UnackedDelivered: 1}},
		{"a retried send acked twice counts once", []Send{a0, a0},
			[]Delivery{deliver(a0, "g", 50)},
			Figures{Class: OrderedSync, Attempted: 2, Acked: 1, Deliveries: 1}},
		{"unordered messages are never reordered", []Send{u1, u2},
			[]Delivery{deliver(u2, "g", 50), deliver(u1, "g", 51)},
			Figures{Class: Unordered, Attempted: 2, Acked: 2, Deliveries: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			figs, _ := Check(tt.sends, tt.dels, nil)
			if len(figs) != 1 || figs[0] != tt.want {
				t.Fatalf("figures %+v, want %+v", figs, tt.want)
			}
		})
	}
}

func TestCheckSeparatesClasses(t *testing.T) {
	s := []Send{keyed(OrderedSync, "a", 0, 1), keyed(OrderedAsync, "b", 0, 2), {ID: "u", Class: Unordered, Acked: true, At: at(3)}}
	figs, _ := Check(s, nil, nil)
	if len(figs) != 3 || figs[0].Class != OrderedSync || figs[1].Class != OrderedAsync || figs[2].Class != Unordered {
		t.Fatalf("classes %+v", figs)
	}
	for _, f := range figs {
		if f.Lost != 1 {
			t.Fatalf("%s: lost %d, want 1", f.Class, f.Lost)
		}
	}
}

func TestRecoveryTimes(t *testing.T) {
	var sends []Send
	for _, ms := range []int{0, 100, 200, 300, 2800, 2900, 3000} { // outage from 300 to 2800
		sends = append(sends, Send{ID: fmt.Sprint(ms), Class: Unordered, Acked: true, At: at(ms)})
	}
	var dels []Delivery
	for _, ms := range []int{50, 150, 250, 3500} {
		dels = append(dels, Delivery{ID: fmt.Sprint(ms), Class: Unordered, Group: "g", At: at(ms)})
	}
	_, rto := Check(sends, dels, []Window{
		{Name: "kill", Start: at(250), End: at(5000)},
		{Name: "quiet", Start: at(3010), End: at(3020)}, // nothing after: runs to its end
	})
	if rto[0].Send != 2500*time.Millisecond {
		t.Fatalf("send RTO %v, want 2.5s (from the ack at 300 to 2800)", rto[0].Send)
	}
	if rto[0].Receive != 3250*time.Millisecond {
		t.Fatalf("receive RTO %v, want 3.25s (from the fault at 250 to 3500)", rto[0].Receive)
	}
	if len(rto) != 3 || rto[0].Class != Unordered || rto[2].Fault != OutsideFaults {
		t.Fatalf("recovery times %+v: want one per fault of the one class, then the time outside faults", rto)
	}
	if rto[1].Send != 10*time.Millisecond {
		t.Fatalf("send RTO of a window without acks %v, want its length", rto[1].Send)
	}
	// Outside the windows only 0-100-200 (before the kill at 250) lie.
	if rto[2].Send != 100*time.Millisecond {
		t.Fatalf("downtime outside the faults %v, want 100ms", rto[2].Send)
	}
}

func TestRPOAndCatchUp(t *testing.T) {
	sends := []Send{
		{ID: "a", Class: OrderedAsync, Acked: true, At: at(100)},
		{ID: "lost1", Class: OrderedAsync, Acked: true, At: at(1000)},
		{ID: "lost2", Class: OrderedAsync, Acked: true, At: at(1800)},
		{ID: "b", Class: OrderedAsync, Acked: true, At: at(1900)},
		{ID: "late", Class: OrderedAsync, Acked: true, At: at(4000)},
	}
	dels := []Delivery{
		{ID: "a", Class: OrderedAsync, Group: "g", At: at(200)},
		{ID: "b", Class: OrderedAsync, Group: "g", At: at(3500)}, // 1.5 s after the fault ended
		{ID: "late", Class: OrderedAsync, Group: "g", At: at(4100)},
	}
	figs, rto := Check(sends, dels, []Window{{Name: "kill", Start: at(1500), End: at(2000)}})
	if figs[0].Lost != 2 || figs[0].RPOSeconds != 0.8 {
		t.Fatalf("figures %+v: want 2 lost over 0.8 s of acks", figs[0])
	}
	if rto[0].CatchUp != 1500*time.Millisecond {
		t.Fatalf("catch-up %v, want 1.5s (b acked before the end, delivered 1.5 s after)", rto[0].CatchUp)
	}
}

func TestRecoveryTimesPerClass(t *testing.T) {
	sends := []Send{
		{ID: "o1", Class: OrderedSync, Acked: true, At: at(100)}, {ID: "o2", Class: OrderedSync, Acked: true, At: at(2600)},
		{ID: "u1", Class: Unordered, Acked: true, At: at(100)}, {ID: "u2", Class: Unordered, Acked: true, At: at(600)},
		{ID: "u3", Class: Unordered, Acked: true, At: at(1100)}, {ID: "u4", Class: Unordered, Acked: true, At: at(1600)},
	}
	_, rto := Check(sends, nil, []Window{{Name: "kill", Start: at(200), End: at(3000)}})
	got := map[Class]time.Duration{}
	for _, x := range rto {
		if x.Fault == "kill" {
			got[x.Class] = x.Send
		}
	}
	if got[OrderedSync] != 2400*time.Millisecond || got[Unordered] != 1400*time.Millisecond {
		t.Fatalf("per-class send RTOs %v: the unordered acks must not hide the ordered outage", got)
	}
}

func TestSeriesAndHTML(t *testing.T) {
	sends := []Send{
		{ID: "a1", Class: Unordered, Acked: true, At: at(100), DC: "idc-a"}, {ID: "a2", Class: Unordered, Acked: true, At: at(1100), DC: "idc-a"},
		{ID: "b1", Class: Unordered, Acked: true, At: at(1200), DC: "idc-b"},
	}
	dels := []Delivery{{ID: "a1", Class: Unordered, DC: "idc-b", At: at(1500)}, {ID: "a1", Class: Unordered, DC: "idc-b", At: at(1600)}}
	s := series(t0, at(2500), sends, dels)
	if len(s.Seconds) != 4 || s.Acked["idc-a"][0] != 1 || s.Acked["idc-a"][1] != 1 || s.Acked["idc-b"][1] != 1 {
		t.Fatalf("acked %v over %v", s.Acked, s.Seconds)
	}
	// idc-a: 1 acked in second 0, 1 more in second 1 and a1 delivered then
	// (its duplicate does not count twice): backlog 1, 1, 1, 1.
	if got := s.Backlog["idc-a"]; got[0] != 1 || got[1] != 1 || got[3] != 1 || s.Backlog["idc-b"][3] != 1 {
		t.Fatalf("backlog %v", s.Backlog)
	}
	rep := &Report{Scenario: "x<y", Started: t0, Ended: at(2500), Series: s, Pass: true,
		Faults: []WindowJSON{{Name: "kill", Start: at(500), End: at(1500)}}}
	path := t.TempDir() + "/r.html"
	if err := rep.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	html := string(b)
	for _, want := range []string{"<svg", "idc-a", "idc-b", "<rect", "x&lt;y", "PASS"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	if strings.Contains(html, "src=\"http") || strings.Contains(html, "href=\"http") {
		t.Error("HTML report loads something from the network")
	}
}

func TestPhasesSplitsLatencyByWindow(t *testing.T) {
	start := t0
	w := Window{Name: "wan +2ms", Start: start.Add(10 * time.Second), End: start.Add(40 * time.Second)}
	var sends []Send
	for i := range 20 { // one send a second, 1 ms each outside, 5 ms inside
		at := start.Add(time.Duration(i) * time.Second)
		lat := time.Millisecond
		if i >= 10 {
			lat = 5 * time.Millisecond
		}
		sends = append(sends, Send{ID: fmt.Sprint(i), Class: OrderedSync, Acked: true, Sent: at, At: at.Add(lat)})
	}
	sends = append(sends, Send{ID: "failed", Class: OrderedSync, Sent: start, At: start.Add(time.Hour)})
	got := Phases(sends, []Window{w}, start, start.Add(20*time.Second))
	if len(got) != 2 || got[0].Phase != baselinePhase || got[1].Phase != w.Name {
		t.Fatalf("phases %+v", got)
	}
	base, in := got[0], got[1]
	if base.Acked != 10 || base.P50ms != 1 || base.Seconds != 10 || base.Throughput != 1 {
		t.Fatalf("baseline %+v", base)
	}
	// The window is clipped to the load's end: 10 s of it, not 30.
	if in.Acked != 10 || in.P50ms != 5 || in.P99ms != 5 || in.Seconds != 10 {
		t.Fatalf("window %+v", in)
	}
}
