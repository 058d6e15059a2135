package drills

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/duomq/duomq/api/brokerpb"
)

// score runs the checker over the records and evaluates the assertions.
func (r *drillRun) score() *Report {
	rep := r.rep
	rep.Ended = time.Now()
	for _, w := range r.windows {
		rep.Faults = append(rep.Faults, WindowJSON{Name: w.Name, Start: w.Start, End: w.End})
	}
	r.rec.mu.Lock()
	figs, rto := Check(r.rec.sends, r.rec.deliveries, r.windows)
	rep.Series = series(rep.Started, rep.Ended, r.rec.sends, r.rec.deliveries)
	rep.Phases = Phases(r.rec.sends, r.windows, rep.Started, r.loadEnded)
	r.rec.mu.Unlock()
	rep.Figures = figs
	for _, x := range rto {
		rep.RTO = append(rep.RTO, RTOJSON{Fault: x.Fault, Class: x.Class, SendSeconds: x.Send.Seconds(), ReceiveSeconds: x.Receive.Seconds(), CatchUpSeconds: x.CatchUp.Seconds()})
	}
	rep.Pass = len(rep.Errors) == 0
	for _, st := range r.s.Steps {
		if st.Action != "assert" || st.Assert.Metric != "" {
			continue
		}
		for _, a := range evaluate(*st.Assert, figs, rto) {
			rep.Assertions = append(rep.Assertions, a)
			rep.Pass = rep.Pass && a.Pass
		}
	}
	r.mu.Lock()
	for _, a := range r.metricAsserts {
		rep.Assertions = append(rep.Assertions, a)
		rep.Pass = rep.Pass && a.Pass
	}
	r.mu.Unlock()
	return rep
}

// evaluate checks one assertion against the figures of its class (every
// class when none is named).
func evaluate(a Assertion, figs []Figures, rto []RTO) []AssertionResult {
	var out []AssertionResult
	for _, f := range figs {
		if a.Class != "" && f.Class != a.Class {
			continue
		}
		atMost := func(what string, bound *int, got int) {
			if bound != nil {
				out = append(out, AssertionResult{What: fmt.Sprintf("%s %s", f.Class, what), Want: fmt.Sprintf("<= %d", *bound), Got: fmt.Sprint(got), Pass: got <= *bound})
			}
		}
		atMost("lost", a.MaxLost, f.Lost)
		atMost("duplicates", a.MaxDuplicates, f.Duplicates)
		atMost("reordered", a.MaxReordered, f.Reordered)
		if a.MinAcked != nil {
			out = append(out, AssertionResult{What: fmt.Sprintf("%s acked", f.Class), Want: fmt.Sprintf(">= %d", *a.MinAcked), Got: fmt.Sprint(f.Acked), Pass: f.Acked >= *a.MinAcked})
		}
	}
	if a.Class != "" && !hasClass(figs, a.Class) {
		out = append(out, AssertionResult{What: string(a.Class), Want: "some messages", Got: "none", Pass: false})
	}
	if a.MaxSendRTO != nil {
		for _, x := range rto {
			if (a.Class != "" && x.Class != a.Class) || x.Fault == OutsideFaults {
				continue
			}
			out = append(out, AssertionResult{What: fmt.Sprintf("%s send RTO of %s", x.Class, x.Fault), Want: "<= " + time.Duration(*a.MaxSendRTO).String(),
				Got: x.Send.Round(time.Millisecond).String(), Pass: x.Send <= time.Duration(*a.MaxSendRTO)})
		}
	}
	return out
}

func hasClass(figs []Figures, c Class) bool {
	for _, f := range figs {
		if f.Class == c {
			return true
		}
	}
	return false
}

// brokerHosts reports whether the broker at addr lists topic.
func brokerHosts(ctx context.Context, addr, topic string) bool {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	res, err := brokerpb.NewBrokerClient(cc).ListTopics(ctx, &brokerpb.ListTopicsRequest{})
	if err != nil {
		return false
	}
	for _, t := range res.GetTopics() {
		if t.GetName() == topic {
			return true
		}
	}
	return false
}
