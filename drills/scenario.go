package drills

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/duomq/duomq/internal/names"
)

// Scenario is a drill: where it runs, the load it puts on the system, and
// the steps it takes, in order. Its YAML form is documented in
// docs/drills.md.
type Scenario struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Topology    Topology `json:"topology"`
	Workload    Workload `json:"workload"`
	Steps       []Step   `json:"steps"`
}

// Topology says where the drill runs: the local topology (started and
// stopped by the drill) or an existing cluster described by a cluster.json.
type Topology struct {
	Local *LocalTopology `json:"local,omitempty"`
	// Cluster is the path of a cluster.json (overridden by the command's
	// --cluster).
	Cluster string `json:"cluster,omitempty"`
}

// LocalTopology shapes the `duomq dev` topology a drill starts.
type LocalTopology struct {
	BrokersPerDC int    `json:"brokers_per_dc,omitempty"`
	FlushMode    string `json:"flush_mode,omitempty"`
	// Netns runs the sites in network namespaces (root), for partitions.
	Netns bool `json:"netns,omitempty"`
	// WAN relays traffic between sites' brokers so wan-latency steps can
	// delay it (not with Netns).
	WAN bool `json:"wan,omitempty"`
	// Standbys makes each placement slot a replica set of two brokers,
	// each in its own process (a component named after the broker, such
	// as broker-a-0), so kill-component can take one broker down.
	Standbys bool `json:"standbys,omitempty"`
}

// Workload is the drill's load. Producers and consumers run from the
// drill's start until its last step, then the consumers drain.
type Workload struct {
	Topics    []TopicLoad `json:"topics"`
	Producers []Producer  `json:"producers"`
	Consumers []Consumer  `json:"consumers"`
}

// TopicLoad is a topic the drill creates (if missing) and writes.
type TopicLoad struct {
	Name        string `json:"name"`
	Ordered     bool   `json:"ordered,omitempty"`
	Queues      int    `json:"queues,omitempty"`
	Primary     string `json:"primary,omitempty"`
	Replication string `json:"replication,omitempty"`
	// Keys is the number of sharding keys of an ordered topic's messages.
	Keys int `json:"keys,omitempty"`
	// MinInSyncReplicas is the topic's floor of in-sync brokers in a
	// replica set (meta.Topic.MinInSyncReplicas).
	MinInSyncReplicas int `json:"min_in_sync_replicas,omitempty"`
}

// Producer sends to one topic through one DC's proxy.
type Producer struct {
	DC    string `json:"dc"`
	Topic string `json:"topic"`
	// Rate is messages per second; Size their body in bytes.
	Rate int `json:"rate"`
	Size int `json:"size,omitempty"`
	// Count producers like this one (default 1).
	Count int `json:"count,omitempty"`
}

// Consumer receives a topic for a group through one DC's proxy.
type Consumer struct {
	DC    string `json:"dc"`
	Group string `json:"group"`
	Topic string `json:"topic"`
}

// Step is one action of the drill. Action is one of: wait,
// switch-traffic, set-weights, switchover, failover, failback, kill-site,
// restart-site, kill-component, restart-component, pause-component,
// resume-component, partition, heal, wan-latency, assert.
type Step struct {
	Action string `json:"action"`
	// For (wait): how long; with Until, the longest wait for the
	// condition (default one minute).
	For Duration `json:"for,omitempty"`
	// Until (wait): the condition that ends the wait.
	Until *Condition `json:"until,omitempty"`
	// Component (kill-, restart-, pause-, resume-component): core,
	// controller, replicator or a broker with standbys (local topology),
	// or any container of a Compose site. Site may then be "leader": the
	// controller leader's site.
	Component string `json:"component,omitempty"`
	// ReplicaSet (kill-, restart-, pause-, resume-component, instead of
	// Component): the broker that leads this replica set of Site's DC,
	// read from its leader record when the kill or pause runs (which
	// member leads depends on which registered first, and on earlier
	// promotions); restart and resume act on the broker the last kill or
	// pause of the set acted on.
	ReplicaSet string `json:"replica_set,omitempty"`
	// Delay (wan-latency): the round trip added between Site and To
	// (0 removes it).
	Delay Duration `json:"delay,omitempty"`
	// Background (switchover, failover, failback): the next steps start
	// at once; the drill waits for the call before the load stops.
	Background bool `json:"background,omitempty"`
	// AllowError: an error of this step is reported but does not fail the
	// drill (a call whose controller leader a later step kills).
	AllowError bool `json:"allow_error,omitempty"`
	// DC: target DC (switch-traffic, switchover/failover/failback of a
	// whole DC, and the new primary's DC as To).
	DC    string `json:"dc,omitempty"`
	Topic string `json:"topic,omitempty"`
	To    string `json:"to,omitempty"`
	Force bool   `json:"force,omitempty"`
	// Weights (set-weights) per DC.
	Weights map[string]int `json:"weights,omitempty"`
	// Site (kill-site, restart-site, partition, heal) and From
	// (partition: the sites it is cut from).
	Site string   `json:"site,omitempty"`
	From []string `json:"from,omitempty"`
	// Assert: bounds on the checker's figures, checked when the drill ends.
	Assert *Assertion `json:"assert,omitempty"`
}

// Condition is what a wait step waits for; every field set must hold.
type Condition struct {
	// ReplicationLagBelow: every follower copy of every ordered topic
	// (Topic's only, when set) lacks fewer messages than this.
	ReplicationLagBelow *int64 `json:"replication_lag_below,omitempty"`
	// TopicWritable: the workload had a send to this topic acked since
	// the wait began.
	TopicWritable string `json:"topic_writable,omitempty"`
	// DC with DCDown and/or DCState: the controller sees the DC down (or
	// up), or in this state (active, blocked, ...).
	DC      string `json:"dc,omitempty"`
	DCDown  *bool  `json:"dc_down,omitempty"`
	DCState string `json:"dc_state,omitempty"`
	// Transition: "in-progress" (a controller transition, of Kind when
	// set, is under way) or "none" (no transition is under way).
	Transition string `json:"transition,omitempty"`
	Kind       string `json:"kind,omitempty"`
	// LeaderNotIn: a controller leader is elected, and not in this site.
	LeaderNotIn string `json:"leader_not_in,omitempty"`
	// Topic narrows ReplicationLagBelow.
	Topic string `json:"topic,omitempty"`
	// MetricBound (metric, labels, site, aggregate, min, max): the metric
	// is within its bounds, as a metric assertion checks it. A series
	// that no endpoint serves yet does not hold.
	MetricBound
}

// Assertion bounds either the checker's figures of one class (all
// classes when empty), checked when the drill ends, or, with Metric, a
// metric of the system, checked when the step runs. Nil bounds are not
// checked.
type Assertion struct {
	Class         Class     `json:"class,omitempty"`
	MaxLost       *int      `json:"max_lost,omitempty"`
	MaxDuplicates *int      `json:"max_duplicates,omitempty"`
	MaxReordered  *int      `json:"max_reordered,omitempty"`
	MaxSendRTO    *Duration `json:"max_send_rto,omitempty"`
	MinAcked      *int      `json:"min_acked,omitempty"`

	MetricBound
}

// MetricBound bounds a metric of the system. Metric names a counter or
// gauge; its samples whose labels include Labels, over every /metrics
// endpoint of Site (every site when empty), are aggregated (Aggregate:
// sum, the default, or min or max) and the result is checked against Min
// and Max. A metric that no endpoint serves is out of bounds.
type MetricBound struct {
	Metric    string            `json:"metric,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Site      string            `json:"site,omitempty"`
	Aggregate string            `json:"aggregate,omitempty"`
	Min       *float64          `json:"min,omitempty"`
	Max       *float64          `json:"max,omitempty"`
}

// Aggregations of a MetricBound's samples.
const (
	AggregateSum = "sum"
	AggregateMin = "min"
	AggregateMax = "max"
)

// set reports whether any field of the bound is set.
func (m MetricBound) set() bool {
	return m.Metric != "" || len(m.Labels) > 0 || m.Site != "" || m.Aggregate != "" || m.Min != nil || m.Max != nil
}

// validate checks a bound that is set.
func (m MetricBound) validate() error {
	switch m.Aggregate {
	case "", AggregateSum, AggregateMin, AggregateMax:
	default:
		return fmt.Errorf("aggregate %q: use sum, min or max", m.Aggregate)
	}
	if m.Metric == "" || (m.Min == nil && m.Max == nil) {
		return errors.New("a metric bound needs metric and min or max")
	}
	return nil
}

// validate checks that the assertion is one kind or the other.
func (a *Assertion) validate() error {
	figures := a.Class != "" || a.MaxLost != nil || a.MaxDuplicates != nil || a.MaxReordered != nil || a.MaxSendRTO != nil || a.MinAcked != nil
	metric := a.MetricBound.set()
	switch {
	case figures && metric:
		return errors.New("assert: bounds on the checker's figures or on a metric, not both in one step")
	case metric:
		if err := a.MetricBound.validate(); err != nil {
			return errors.New("assert: " + err.Error())
		}
	case !figures:
		return errors.New("assert: no bound")
	}
	return nil
}

// Duration is a time.Duration written as "3s" in scenarios and reports.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "3s" (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration: want a string such as \"3s\"")
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ErrInvalid marks a scenario that does not validate.
var ErrInvalid = errors.New("drills: invalid scenario")

// Load reads and validates a scenario file (YAML or JSON). Unknown keys
// are errors, so a misspelt key is not silently ignored.
func Load(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, err
	}
	return Parse(b)
}

// SchemaJSON is the JSON Schema of the scenario format (shipped as
// drills/scenario.schema.json): editors can check a scenario with it, and
// Parse checks every scenario against it before reading it.
//
//go:embed scenario.schema.json
var SchemaJSON []byte

// schemaID is the schema's $id.
const schemaID = "urn:duomq:drill-scenario:v1"

var schema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaID, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaID)
})

// Parse is Load of the file's contents: the JSON Schema first, then the
// checks a schema cannot express (Validate).
func Parse(b []byte) (Scenario, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sch, err := schema()
	if err != nil {
		return Scenario{}, fmt.Errorf("drills: the scenario schema does not compile: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return Scenario{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := sch.Validate(inst); err != nil {
		return Scenario{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return s, s.Validate()
}

// actions are the step actions and what each requires.
var actions = map[string]func(Step) error{
	"wait": func(s Step) error {
		if s.Until != nil {
			return s.Until.validate()
		}
		return need(s.For > 0, "for: a positive duration, or until: a condition")
	},
	"switch-traffic": func(s Step) error {
		return need(s.DC != "", "dc: the DC that takes all traffic")
	},
	"set-weights": func(s Step) error { return need(len(s.Weights) > 0, "weights: per-DC write weights") },
	"switchover":  targetAndTo,
	"failover":    targetAndTo,
	"failback":    func(s Step) error { return need((s.Topic != "") != (s.DC != ""), "topic or dc (one of them)") },
	"kill-site":   func(s Step) error { return need(s.Site != "", "site") },
	"restart-site": func(s Step) error {
		return need(s.Site != "", "site")
	},
	"partition":         func(s Step) error { return need(s.Site != "" && len(s.From) > 0, "site and from") },
	"heal":              func(s Step) error { return need(s.Site != "", "site") },
	"kill-component":    siteAndComponent,
	"restart-component": siteAndComponent,
	"pause-component":   siteAndComponent,
	"resume-component":  siteAndComponent,
	"wan-latency": func(s Step) error {
		return need(s.Site != "" && s.To != "" && s.Site != s.To && s.Delay >= 0, "site and to (two different sites), and delay")
	},
	"assert": func(s Step) error {
		if s.Assert == nil {
			return need(false, "assert: the bounds")
		}
		return s.Assert.validate()
	},
}

func siteAndComponent(s Step) error {
	if s.ReplicaSet != "" {
		if s.Component != "" {
			return errors.New("component or replica_set, not both")
		}
		return need(s.Site != "" && s.Site != "leader", "site: the DC of the replica set")
	}
	return need(s.Site != "" && s.Component != "", "site (or leader) and component (or replica_set)")
}

func (c *Condition) validate() error {
	if (c.DCDown != nil || c.DCState != "") != (c.DC != "") {
		return errors.New("until: dc goes with dc_down or dc_state")
	}
	if c.ReplicationLagBelow == nil && c.TopicWritable == "" && c.DC == "" && c.Transition == "" && c.LeaderNotIn == "" && !c.MetricBound.set() {
		return errors.New("until: needs replication_lag_below, topic_writable, dc (with dc_down or dc_state), transition, leader_not_in or metric")
	}
	if c.MetricBound.set() {
		if err := c.MetricBound.validate(); err != nil {
			return errors.New("until: " + err.Error())
		}
	}
	if c.Transition != "" && c.Transition != "in-progress" && c.Transition != "none" {
		return fmt.Errorf("until: transition %q: use in-progress or none", c.Transition)
	}
	return nil
}

func targetAndTo(s Step) error {
	return need((s.Topic != "") != (s.DC != "") && s.To != "", "topic or dc (one of them), and to")
}

func need(ok bool, what string) error {
	if ok {
		return nil
	}
	return errors.New("needs " + what)
}

// Validate checks the scenario and names the first bad field.
func (s Scenario) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if s.Name == "" {
		bad("name is empty")
	}
	if s.Topology.Local != nil && s.Topology.Cluster != "" {
		bad("topology: local or cluster, not both")
	}
	topics := map[string]TopicLoad{}
	for i, t := range s.Workload.Topics {
		if err := names.Topic(t.Name); err != nil {
			bad("workload.topics[%d]: %v", i, err)
		}
		if t.Ordered && t.Primary == "" {
			bad("workload.topics[%d]: an ordered topic needs primary", i)
		}
		topics[t.Name] = t
	}
	for i, p := range s.Workload.Producers {
		if _, ok := topics[p.Topic]; !ok {
			bad("workload.producers[%d]: topic %q is not in workload.topics", i, p.Topic)
		}
		if p.DC == "" || p.Rate <= 0 || p.Size < 0 || p.Count < 0 {
			bad("workload.producers[%d]: needs dc and a positive rate", i)
		}
	}
	for i, c := range s.Workload.Consumers {
		if _, ok := topics[c.Topic]; !ok {
			bad("workload.consumers[%d]: topic %q is not in workload.topics", i, c.Topic)
		}
		if c.DC == "" || names.Group(c.Group) != nil {
			bad("workload.consumers[%d]: needs dc and a valid group", i)
		}
	}
	if len(s.Steps) == 0 {
		bad("steps is empty")
	}
	for i, st := range s.Steps {
		check, ok := actions[st.Action]
		if !ok {
			bad("steps[%d]: unknown action %q", i, st.Action)
			continue
		}
		if st.Background && st.Action != "switchover" && st.Action != "failover" && st.Action != "failback" {
			bad("steps[%d] (%s): only switchover, failover and failback run in the background", i, st.Action)
		}
		if err := check(st); err != nil {
			bad("steps[%d] (%s): %v", i, st.Action, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}
