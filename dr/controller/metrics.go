package controller

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/duomq/duomq/dr/meta"
)

// metrics are the controller's Prometheus series, registered on the
// Registerer of Deps (never the global one).
type metrics struct {
	leader      prometheus.Gauge
	total       map[Kind]*prometheus.CounterVec // outcome
	duration    map[Kind]prometheus.Histogram
	lastPause   prometheus.Gauge
	dcState     *prometheus.GaugeVec // dc
	dcAlive     *prometheus.GaugeVec // dc
	dcProxies   *prometheus.GaugeVec // dc
	dcHealthy   *prometheus.GaugeVec // dc
	inProgress  prometheus.Gauge
	trafficOps  *prometheus.CounterVec // op
	stateWrites prometheus.Counter
	weight      *prometheus.GaugeVec // dc
	blocked     *prometheus.GaugeVec // dc
}

// transitionBuckets run from 10ms to about 82s.
var transitionBuckets = prometheus.ExponentialBuckets(0.01, 2, 14)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "duomq_controller_leader", Help: "1 while this controller candidate leads, else 0.",
		}),
		total:    map[Kind]*prometheus.CounterVec{},
		duration: map[Kind]prometheus.Histogram{},
		lastPause: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "duomq_controller_last_write_pause_seconds",
			Help: "Write pause of the last finished switchover or failback: from the blocking write to the last routing write.",
		}),
		dcState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_dc_state", Help: "State of each DC in the metadata: 0 active, 1 draining, 2 down.",
		}, []string{"dc_name"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_traffic_weight",
			Help: "Write weight of each DC for unordered topics in the traffic policy (traffic.weights, topic overrides aside); no series while none is set: every proxy then writes to its own DC.",
		}, []string{"dc_name"}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_traffic_blocked", Help: "1 while the traffic policy blocks unordered writes to the DC (traffic.blocked_dcs), else 0.",
		}, []string{"dc_name"}),
		dcAlive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_dc_alive_brokers", Help: "Broker liveness records of each DC.",
		}, []string{"dc_name"}),
		dcProxies: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_dc_live_proxies", Help: "Proxy liveness records of each DC.",
		}, []string{"dc_name"}),
		dcHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_controller_dc_healthy",
			Help: "1 while the DC meets the health thresholds (min-live-brokers, min-live-proxies, etcd-member-required), else 0; a DC unhealthy for down-after is failed over.",
		}, []string{"dc_name"}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "duomq_controller_transitions_in_progress", Help: "Failovers, switchovers and failbacks running on this leader.",
		}),
		trafficOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_controller_traffic_changes_total", Help: "Traffic policy changes written, by operation.",
		}, []string{"op"}),
		stateWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_controller_state_writes_total", Help: "Writes of controller/state (one before each transition step).",
		}),
	}
	for _, k := range []Kind{KindFailover, KindSwitchover, KindFailback} {
		m.total[k] = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_controller_" + string(k) + "s_total", Help: "Finished " + string(k) + "s by outcome (ok, failed, rolled-back).",
		}, []string{"outcome"})
		m.duration[k] = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "duomq_controller_" + string(k) + "_duration_seconds",
			Help:    "Time from the start of a successful " + string(k) + " (for an automatic failover, the detection) to the new primary's record.",
			Buckets: transitionBuckets,
		})
	}
	if reg != nil {
		reg.MustRegister(m.leader, m.lastPause, m.dcState, m.dcAlive, m.dcProxies, m.dcHealthy, m.inProgress, m.trafficOps, m.stateWrites, m.weight, m.blocked)
		for _, k := range []Kind{KindFailover, KindSwitchover, KindFailback} {
			reg.MustRegister(m.total[k], m.duration[k])
		}
	}
	return m
}

// setTraffic exports the traffic policy: the weights set, and for every DC
// whether it is blocked.
func (m *metrics) setTraffic(t meta.Traffic, dcs []meta.DC) {
	m.weight.Reset() // a DC whose weight was removed loses its series
	for dc, w := range t.Weights {
		m.weight.WithLabelValues(dc).Set(float64(w))
	}
	for _, d := range dcs {
		v := 0.0
		if slices.Contains(t.BlockedDCs, d.Name) {
			v = 1
		}
		m.blocked.WithLabelValues(d.Name).Set(v)
	}
}

func dcStateValue(s meta.DCState) float64 {
	switch s {
	case meta.DCDraining:
		return 1
	case meta.DCDown:
		return 2
	}
	return 0
}
