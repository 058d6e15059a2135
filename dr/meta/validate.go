package meta

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"unicode"

	"github.com/duomq/duomq/internal/names"
)

func invalid(format string, args ...any) error { return errorf(ErrInvalid, format, args...) }

// checkName wraps a names error so that it is both ErrInvalid and
// names.ErrInvalid.
func checkName(check func(string) error, name string) error {
	if err := check(name); err != nil {
		return errorf(ErrInvalid, "%w", err)
	}
	return nil
}

// normalize fills DC defaults.
func (d *DC) normalize() {
	if d.State == "" {
		d.State = DCActive
	}
}

func (d DC) validate() error {
	if err := checkName(names.DC, d.Name); err != nil {
		return err
	}
	for _, c := range d.CIDRs {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return invalid("dc %q: cidr %q is not a CIDR such as 10.1.0.0/16", d.Name, c)
		}
	}
	if err := validState(d.State); err != nil {
		return fmt.Errorf("dc %q: %w", d.Name, err)
	}
	if len(d.UpdatedBy) > maxUpdatedByLen {
		return invalid("dc %q: updated-by is longer than %d characters", d.Name, maxUpdatedByLen)
	}
	return nil
}

func validState(s DCState) error {
	switch s {
	case DCActive, DCDraining, DCDown:
		return nil
	}
	return invalid("state %q: use active, draining or down", s)
}

// normalize fills topic defaults.
func (t *Topic) normalize() {
	if t.Replication == "" {
		t.Replication = ReplicationNone
		if t.Ordered {
			t.Replication = ReplicationSync
		}
	}
	if t.Replication == ReplicationSync && t.SyncPolicy == "" {
		t.SyncPolicy = SyncPolicyFail
	}
	if t.RetentionAge == 0 {
		t.RetentionAge = DefaultRetentionAge
	}
	if t.MaxMessageBytes == 0 {
		t.MaxMessageBytes = DefaultMaxMessageBytes
	}
}

func (t Topic) validate() error {
	if err := checkName(names.Topic, t.Name); err != nil {
		return err
	}
	if t.Queues < 1 || t.Queues > MaxQueues {
		return invalid("topic %q: queues %d not in [1, %d]", t.Name, t.Queues, MaxQueues)
	}
	switch t.Replication {
	case ReplicationNone, ReplicationAsync, ReplicationSync:
	default:
		return invalid("topic %q: replication %q: use none, async or sync", t.Name, t.Replication)
	}
	switch t.SyncPolicy {
	case SyncPolicyFail, SyncPolicyDegrade:
		if t.Replication != ReplicationSync {
			return invalid("topic %q: sync policy %q set with replication %s: it applies to replication sync only", t.Name, t.SyncPolicy, t.Replication)
		}
	case "":
	default:
		return invalid("topic %q: sync policy %q: use fail or degrade", t.Name, t.SyncPolicy)
	}
	if t.Ordered {
		if t.Primary == "" {
			return invalid("topic %q: an ordered topic needs a primary dc", t.Name)
		}
		if err := checkName(names.DC, t.Primary); err != nil {
			return fmt.Errorf("topic %q: primary: %w", t.Name, err)
		}
		if t.Replication == ReplicationNone {
			return invalid("topic %q: an ordered topic needs replication sync or async: its follower copy is what failover promotes", t.Name)
		}
	} else if t.Primary != "" {
		return invalid("topic %q: primary %q set on an unordered topic: only ordered topics have a primary", t.Name, t.Primary)
	}
	if t.RetentionAge < 0 {
		return invalid("topic %q: retention %v is negative", t.Name, t.RetentionAge)
	}
	if t.MaxMessageBytes < 1 || t.MaxMessageBytes > MaxMessageBytesLimit {
		return invalid("topic %q: max message bytes %d not in [1, %d]", t.Name, t.MaxMessageBytes, MaxMessageBytesLimit)
	}
	if t.MinInSyncReplicas < 0 || t.MinInSyncReplicas > MaxMinInSyncReplicas {
		return invalid("topic %q: min in-sync replicas %d not in [1, %d] (0 means 1)", t.Name, t.MinInSyncReplicas, MaxMinInSyncReplicas)
	}
	if t.MinInSyncReplicas > 1 && t.Replication == ReplicationNone {
		return invalid("topic %q: min in-sync replicas %d with replication none: only replicated topics are copied inside a replica set", t.Name, t.MinInSyncReplicas)
	}
	return nil
}

// normalize fills group defaults.
func (g *Group) normalize() {
	if g.MaxRetries == 0 {
		g.MaxRetries = DefaultMaxRetries
	}
	if g.Mode == "" {
		g.Mode = ModeClustering
	}
	g.Subscriptions = slices.Clone(g.Subscriptions)
	for i := range g.Subscriptions {
		if strings.TrimSpace(g.Subscriptions[i].Tags) == "" {
			g.Subscriptions[i].Tags = "*"
		}
	}
}

func (g Group) validate() error {
	if err := checkName(names.Group, g.Name); err != nil {
		return err
	}
	// A group may have no subscriptions yet: consumers name their topics
	// when they connect, and the group's settings (retries, mode) apply.
	seen := make(map[string]bool, len(g.Subscriptions))
	for _, s := range g.Subscriptions {
		if err := checkName(names.Topic, s.Topic); err != nil {
			return fmt.Errorf("group %q: subscription: %w", g.Name, err)
		}
		if seen[s.Topic] {
			return invalid("group %q: topic %q subscribed twice", g.Name, s.Topic)
		}
		seen[s.Topic] = true
		if err := validTags(s.Tags); err != nil {
			return fmt.Errorf("group %q: topic %q: %w", g.Name, s.Topic, err)
		}
	}
	if g.MaxRetries < 1 || g.MaxRetries > MaxRetriesLimit {
		return invalid("group %q: max retries %d not in [1, %d]", g.Name, g.MaxRetries, MaxRetriesLimit)
	}
	switch g.Mode {
	case ModeClustering, ModeBroadcast:
	default:
		return invalid("group %q: mode %q: use clustering or broadcast", g.Name, g.Mode)
	}
	return nil
}

func validTags(tags string) error {
	if len(tags) > MaxTagsLen {
		return invalid("tag expression is longer than %d characters", MaxTagsLen)
	}
	for _, r := range tags {
		if unicode.IsControl(r) {
			return invalid("tag expression %q has a control character", tags)
		}
	}
	return nil
}

func (o Ordered) validate() error {
	if err := checkName(names.Topic, o.Topic); err != nil {
		return err
	}
	if err := checkName(names.DC, o.Primary); err != nil {
		return fmt.Errorf("ordered topic %q: primary: %w", o.Topic, err)
	}
	if o.Epoch == 0 {
		return invalid("ordered topic %q: epoch 0: epochs start at 1", o.Topic)
	}
	return nil
}

// normalize sorts the blocked DCs so equal traffic records encode equally.
func (t *Traffic) normalize() {
	t.BlockedDCs = slices.Clone(t.BlockedDCs)
	slices.Sort(t.BlockedDCs)
}

func (t Traffic) validate() error {
	if err := validWeights("weights", t.Weights); err != nil {
		return err
	}
	for topic, w := range t.TopicOverrides {
		if err := checkName(names.Topic, topic); err != nil {
			return fmt.Errorf("traffic override: %w", err)
		}
		if len(w) == 0 {
			return invalid("traffic override of topic %q has no weights: remove it instead", topic)
		}
		if err := validWeights("override of topic "+topic, w); err != nil {
			return err
		}
	}
	for i, dc := range t.BlockedDCs {
		if err := checkName(names.DC, dc); err != nil {
			return fmt.Errorf("traffic blocked dcs: %w", err)
		}
		if i > 0 && t.BlockedDCs[i-1] == dc {
			return invalid("traffic: dc %q blocked twice", dc)
		}
	}
	return nil
}

func validWeights(what string, w map[string]int) error {
	sum := 0
	for dc, v := range w {
		if err := checkName(names.DC, dc); err != nil {
			return fmt.Errorf("traffic %s: %w", what, err)
		}
		if v < 0 || v > MaxWeight {
			return invalid("traffic %s: weight %d of dc %q not in [0, %d]", what, v, dc, MaxWeight)
		}
		sum += v
	}
	if len(w) > 0 && sum == 0 {
		return invalid("traffic %s: every weight is 0: at least one dc must take writes", what)
	}
	return nil
}

// dcs are the DCs a traffic record refers to, sorted and unique.
func (t Traffic) dcs() []string {
	var out []string
	for dc := range t.Weights {
		out = append(out, dc)
	}
	for _, w := range t.TopicOverrides {
		for dc := range w {
			out = append(out, dc)
		}
	}
	out = append(out, t.BlockedDCs...)
	slices.Sort(out)
	return slices.Compact(out)
}

func (o OffsetKV) validate() error {
	if err := checkName(names.Group, o.Group); err != nil {
		return fmt.Errorf("offset: %w", err)
	}
	if err := checkName(names.Topic, o.Topic); err != nil {
		return fmt.Errorf("offset of group %q: %w", o.Group, err)
	}
	if err := checkName(names.DC, o.DC); err != nil {
		return fmt.Errorf("offset of group %q topic %q: %w", o.Group, o.Topic, err)
	}
	if o.Queue < 0 || o.Queue >= MaxQueues {
		return invalid("offset of group %q topic %q: queue %d not in [0, %d)", o.Group, o.Topic, o.Queue, MaxQueues)
	}
	if o.Offset.Offset < 0 {
		return invalid("offset of group %q topic %q queue %d: offset %d is negative", o.Group, o.Topic, o.Queue, o.Offset.Offset)
	}
	return nil
}

// checkRawKey accepts keys under controller/ and drills/ made of name
// characters, so PutJSON can never write over a typed record.
func checkRawKey(rel string) error {
	if !strings.HasPrefix(rel, "controller/") && !strings.HasPrefix(rel, KeyDrills) {
		return invalid("key %q: raw JSON lives under controller/ or drills/ only", rel)
	}
	if len(rel) > maxRawKeyLen {
		return invalid("key %q is longer than %d characters", rel, maxRawKeyLen)
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" {
			return invalid("key %q has an empty segment", rel)
		}
		if strings.IndexFunc(seg, badKeyRune) >= 0 || strings.Trim(seg, ".") == "" {
			return invalid("key %q: segment %q: use A-Z a-z 0-9 _ - .", rel, seg)
		}
	}
	return nil
}

func badKeyRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
}
