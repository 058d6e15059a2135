package metasync

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duomq/duomq/broker"
	"github.com/duomq/duomq/dr/meta"
)

func TestRoleOfAndOrder(t *testing.T) {
	slots := []meta.Slot{
		{Name: "a0", Set: "pair", Named: true, Term: 3, Live: true, InSync: []string{"a1"}, Standbys: []meta.Standby{{Name: "a1", Live: true}, {Name: "a2"}}},
		{Name: "solo", Set: "solo", Live: true},
		{Name: "n0", Set: "new", Named: true, Standbys: []meta.Standby{{Name: "n1", Live: true}}}, // no record yet
		{Name: "l0", Set: "lone", Named: true},                                                    // one member, no record yet
		{Name: "f0", Set: "first", Named: true, Term: 1, Live: true},                              // one member, its record
	}
	cases := []struct {
		self string
		want setRole
	}{
		{"a0", setRole{term: 3, inSync: []string{"idc-a/a1"}}},
		{"a1", setRole{standby: true, term: 3}},
		{"a2", setRole{standby: true, term: 3}},
		{"solo", setRole{}},
		{"n0", setRole{standby: true}}, // nobody leads before the record
		{"n1", setRole{standby: true}},
		{"l0", setRole{standby: true}}, // a named set leads only through its record
		{"f0", setRole{term: 1}},
		{"unknown", setRole{}},
	}
	for _, c := range cases {
		got := roleOf(slots, "idc-a", c.self)
		if got.standby != c.want.standby || got.term != c.want.term || !slices.Equal(got.inSync, c.want.inSync) {
			t.Errorf("%s: role %+v, want %+v", c.self, got, c.want)
		}
	}
	lead := roleOf(slots, "idc-a", "a0")
	o := lead.order(broker.Order{Primary: "idc-a"}, true, 2)
	if o.Standby || o.Term != 3 || !o.SetWrites || !slices.Equal(o.SetFollowers, []string{"idc-a/a1"}) || o.MinInSync != 2 {
		t.Errorf("leader's order of a topic it writes: %+v", o)
	}
	if o := lead.order(broker.Order{Primary: "idc-b"}, false, 2); o.SetWrites || len(o.SetFollowers) != 0 || o.Term != 3 || o.MinInSync != 0 {
		t.Errorf("leader's order of a copy it does not write: %+v", o)
	}
	if o := roleOf(slots, "idc-a", "a1").order(broker.Order{Primary: "idc-a"}, true, 2); !o.Standby || len(o.SetFollowers) != 0 {
		t.Errorf("standby's order: %+v", o)
	}
	// Alone in its set: no standby to wait for, but the floor counts the
	// follower DCs of a sync topic.
	if o := (setRole{}).order(broker.Order{Primary: "idc-a"}, true, 2); o.Standby || o.Term != 0 || o.SetWrites || o.SetFollowers != nil || o.MinInSync != 2 {
		t.Errorf("a broker alone in its set: %+v", o)
	}
}

// The keeper admits a standby only once the leader already waits for it
// (so nothing is acked without it after it is listed), and sends a
// listed standby whose process restarted out of the list.
func TestKeeperJudgeAdmitsAfterWaitingAndDropsRestarted(t *testing.T) {
	b := newBroker(t)
	k := NewSetKeeper(nil, nil, b, nil)
	id := broker.StandbyID(b.DC(), "s1")
	t0 := time.Unix(1000, 0)
	up := meta.Standby{Name: "s1", Live: true, Alive: meta.Alive{Name: "s1", Started: t0}}

	var c change
	k.judge(up, false, &c)
	if !slices.Equal(c.joins, []string{"s1"}) || !slices.Equal(c.in, []string{"s1"}) {
		t.Fatalf("a caught-up standby was not admitted: %+v", c)
	}
	if !b.WaitsForStandby(id) {
		t.Fatal("admitted before the leader waits for it")
	}

	c = change{}
	k.judge(up, true, &c)
	if len(c.why) != 0 || !slices.Equal(c.in, []string{"s1"}) {
		t.Fatalf("a listed, unchanged standby: %+v", c)
	}
	restarted := up
	restarted.Alive.Started = t0.Add(time.Minute)
	c = change{}
	k.judge(restarted, true, &c)
	if !slices.Equal(c.leaves, []string{"s1"}) || len(c.in) != 0 || !strings.Contains(strings.Join(c.why, ";"), "restarted") {
		t.Fatalf("a restarted standby stayed listed: %+v", c)
	}
	c = change{}
	k.judge(meta.Standby{Name: "s1"}, true, &c)
	if !slices.Equal(c.leaves, []string{"s1"}) || !strings.Contains(strings.Join(c.why, ";"), "liveness record is gone") {
		t.Fatalf("a standby without liveness record stayed listed: %+v", c)
	}
}
