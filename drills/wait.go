package drills

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/duomq/duomq/dr/controller"
)

// defaultWaitTimeout bounds a wait for a condition without its own for.
const defaultWaitTimeout = time.Minute

// waitPoll is how often a condition is checked.
const waitPoll = 50 * time.Millisecond

// wait sleeps for st.For, or polls st.Until until it holds (an error
// when st.For, default one minute, passes first).
func (r *drillRun) wait(ctx context.Context, st Step) (string, error) {
	if st.Until == nil {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Duration(st.For)):
			return "", nil
		}
	}
	limit := time.Duration(st.For)
	if limit <= 0 {
		limit = defaultWaitTimeout
	}
	began := time.Now()
	deadline := began.Add(limit)
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		ok, why := r.holds(ctx, *st.Until, began)
		if ok {
			return fmt.Sprintf("held after %v", time.Since(began).Round(time.Millisecond)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("wait: not within %v: %s", limit, why)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

// holds evaluates c; why says what does not hold yet.
func (r *drillRun) holds(ctx context.Context, c Condition, began time.Time) (bool, string) {
	if c.TopicWritable != "" && !r.rec.ackedSince(c.TopicWritable, began) {
		return false, "no send to " + c.TopicWritable + " acked yet"
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c.LeaderNotIn != "" {
		site, err := r.leaderNow(mctx)
		if err != nil || site == c.LeaderNotIn {
			return false, fmt.Sprintf("controller leader in %q (%v)", site, err)
		}
	}
	if c.Transition != "" {
		trs, err := controller.ReadTransitions(mctx, r.store)
		if err != nil {
			return false, "controller state: " + err.Error()
		}
		if ok, why := transitionsHold(trs, c); !ok {
			return false, why
		}
	}
	if c.MetricBound.set() {
		res, err := r.checkMetric(mctx, c.MetricBound)
		switch {
		case err != nil:
			return false, err.Error()
		case !res.Pass:
			return false, fmt.Sprintf("%s = %s (want %s)", res.What, res.Got, res.Want)
		}
	}
	if c.ReplicationLagBelow == nil && c.DC == "" {
		return true, ""
	}
	var st controller.Status
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	cli := controller.NewClient(r.f.ControllerURLs(), r.f.ControllerToken, nil)
	if err := cli.Do(sctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return false, "controller status: " + err.Error()
	}
	return statusHolds(st, c)
}

// transitionsHold evaluates c.Transition against the recorded transitions.
func transitionsHold(trs []controller.Transition, c Condition) (bool, string) {
	n := 0
	for _, tr := range trs {
		if c.Kind == "" || string(tr.Kind) == c.Kind {
			n++
		}
	}
	if (c.Transition == "in-progress") != (n > 0) {
		return false, fmt.Sprintf("%d transitions under way", n)
	}
	return true, ""
}

// statusHolds evaluates the parts of c read from the controller's status.
func statusHolds(st controller.Status, c Condition) (bool, string) {
	if c.ReplicationLagBelow != nil {
		if len(st.Errors) > 0 {
			return false, "status incomplete: " + strings.Join(st.Errors, "; ")
		}
		for _, o := range st.Ordered {
			if c.Topic != "" && o.Topic != c.Topic {
				continue
			}
			for _, l := range o.Lag {
				if l.Messages >= *c.ReplicationLagBelow {
					return false, fmt.Sprintf("%s queue %d lags %d messages in %s", o.Topic, l.Queue, l.Messages, l.DC)
				}
			}
		}
	}
	if c.DC != "" {
		var dc *controller.DCStatus
		for i := range st.DCs {
			if st.DCs[i].Name == c.DC {
				dc = &st.DCs[i]
			}
		}
		switch {
		case dc == nil:
			return false, "no DC " + c.DC + " in the status"
		case c.DCDown != nil && dc.Down != *c.DCDown:
			return false, fmt.Sprintf("%s down=%v", c.DC, dc.Down)
		case c.DCState != "" && string(dc.State) != c.DCState:
			return false, fmt.Sprintf("%s is %s", c.DC, dc.State)
		}
	}
	return true, ""
}

// String is the condition in a few words (the step summary).
func (c Condition) String() string {
	var parts []string
	if c.ReplicationLagBelow != nil {
		parts = append(parts, fmt.Sprintf("replication lag < %d", *c.ReplicationLagBelow))
	}
	if c.TopicWritable != "" {
		parts = append(parts, c.TopicWritable+" writable")
	}
	if c.DCDown != nil {
		parts = append(parts, fmt.Sprintf("%s down=%v", c.DC, *c.DCDown))
	}
	if c.DCState != "" {
		parts = append(parts, c.DC+" "+c.DCState)
	}
	if c.Transition != "" {
		parts = append(parts, strings.TrimSpace(c.Kind+" transition "+c.Transition))
	}
	if c.LeaderNotIn != "" {
		parts = append(parts, "leader not in "+c.LeaderNotIn)
	}
	if c.Metric != "" {
		m := describeMetric(c.Metric, c.Labels)
		if c.Aggregate != "" && c.Aggregate != AggregateSum {
			m = c.Aggregate + " of " + m
		}
		if c.Site != "" {
			m += " in " + c.Site
		}
		parts = append(parts, m+" "+bounds(c.Min, c.Max))
	}
	return strings.Join(parts, ", ")
}
