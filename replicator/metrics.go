package replicator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the replicator's series. Labels: topic and queue (bounded
// by the topics operators create and their queue counts).
type metrics struct {
	lagMessages *prometheus.GaugeVec
	lagSeconds  *prometheus.GaugeVec
	lagBytes    *prometheus.GaugeVec
	replicated  *prometheus.CounterVec
	truncated   *prometheus.CounterVec
	errors      *prometheus.CounterVec
	workers     prometheus.Gauge
	standbyLag  *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, r *Replicator) *metrics {
	m := &metrics{
		lagMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_replicator_lag_messages", Help: "Records the leading DC has and this DC's copy does not, per followed queue.",
		}, []string{"topic", "queue"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_replicator_lag_seconds", Help: "Age of the oldest record not yet copied, per followed queue (0 when caught up).",
		}, []string{"topic", "queue"}),
		lagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_replicator_lag_bytes", Help: "Record bytes the leading DC has and this DC's copy does not, per followed queue.",
		}, []string{"topic", "queue"}),
		replicated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_replicator_replicated_messages_total", Help: "Records copied into this DC.",
		}, []string{"topic"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_replicator_truncated_messages_total", Help: "Divergent records cut from this DC's copy (quarantined).",
		}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_replicator_errors_total", Help: "Failed replication steps, by step.",
		}, []string{"step"}),
		standbyLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_replicator_standby_lag_messages", Help: "Records a replica set's leader in this DC has and its standby does not, per queue and standby.",
		}, []string{"topic", "queue", "standby"}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "duomq_replicator_followed_queues", Help: "Queues this DC follows now.",
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.lagMessages, m.lagSeconds, m.lagBytes, m.replicated, m.truncated, m.errors, m.workers, m.standbyLag)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "duomq_replicator_offset_sync_age_seconds", Help: "Time since consumer offsets were last copied from every leading broker.",
	}, func() float64 {
		last := r.offsetSynced.Load()
		if last == 0 {
			return 0
		}
		return time.Since(time.Unix(0, last)).Seconds()
	}))
	return m
}
