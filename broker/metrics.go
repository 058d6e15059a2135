package broker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the broker's Prometheus series. Labels are bounded: topic
// and consumer group names only (operators create both; ids and clients
// never become labels). Consumer lag is collected at scrape time
// (metrics_lag.go).
type metrics struct {
	sentMessages    *prometheus.CounterVec
	sentBytes       *prometheus.CounterVec
	sendLatency     prometheus.Histogram
	sendErrors      prometheus.Counter
	pulledMessages  prometheus.Counter
	fsyncLatency    prometheus.Histogram
	corruptRecords  prometheus.Counter
	dispatchSkipped prometheus.Counter
	popped          prometheus.Counter
	popsReleased    prometheus.Counter
	acked           prometheus.Counter
	retried         prometheus.Counter
	deadLettered    prometheus.Counter
	scheduled       prometheus.Counter
	replicaTimeouts prometheus.Counter
	replicated      prometheus.Counter
	truncated       prometheus.Counter
	isrChanges      *prometheus.CounterVec
	promotions      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, b *Broker) *metrics {
	m := &metrics{
		sentMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_broker_sent_messages_total", Help: "Messages appended, by topic.",
		}, []string{"topic"}),
		sentBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_broker_sent_bytes_total", Help: "Record bytes appended, by topic.",
		}, []string{"topic"}),
		sendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "duomq_broker_send_duration_seconds", Help: "Time from receiving a send to acking it (flush included).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16),
		}),
		sendErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_send_errors_total", Help: "Sends refused or failed.",
		}),
		pulledMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_pulled_messages_total", Help: "Messages returned by pulls.",
		}),
		fsyncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "duomq_broker_commitlog_fsync_duration_seconds", Help: "Duration of commitlog fsyncs.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16),
		}),
		corruptRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_corrupt_records_total", Help: "Records that failed their checksum on read (never served).",
		}),
		dispatchSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_dispatch_skipped_records_total", Help: "Commitlog records not dispatched (deleted topic or already dispatched).",
		}),
		popped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_popped_messages_total", Help: "Messages handed out by pops (redeliveries included).",
		}),
		popsReleased: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_released_pop_messages_total", Help: "Popped messages made visible again by ReleasePop (their answer was lost on the way to the caller).",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_acked_messages_total", Help: "Popped messages acked.",
		}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_retry_copies_total", Help: "Expired pops copied to a retry topic.",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_dead_lettered_messages_total", Help: "Popped messages copied to a dead-letter topic after their last attempt.",
		}),
		scheduled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_schedule_records_handled_total", Help: "Schedule records delivered, moved to another delay level or dropped.",
		}),
		replicaTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_replica_timeouts_total", Help: "Sync-replicated sends that failed because a follower DC did not confirm in time or, under sync policy fail, was out of the in-sync set.",
		}),
		replicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_replica_appended_messages_total", Help: "Records copied from another DC's leader and stored here.",
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_truncated_messages_total", Help: "Divergent follower records cut off and quarantined.",
		}),
		isrChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_broker_isr_changes_total", Help: "Follower DCs leaving (change=leave) or re-entering (change=rejoin) the in-sync set of a sync-replicated topic whose primary is this broker's DC.",
		}, []string{"topic", "change"}),
		promotions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_broker_replica_set_promotions_total", Help: "Times this broker, a standby in sync, was promoted to lead its replica set after its leader lost its liveness lease.",
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.sentMessages, m.sentBytes, m.sendLatency, m.sendErrors, m.pulledMessages,
		m.fsyncLatency, m.corruptRecords, m.dispatchSkipped, m.popped, m.popsReleased, m.acked, m.retried, m.deadLettered, m.scheduled,
		m.replicaTimeouts, m.replicated, m.truncated, m.isrChanges, m.promotions)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "duomq_broker_replica_set_standby", Help: "1 while this broker is a standby of its replica set (it copies the set's leader and takes no sends of replicated topics), else 0.",
	}, func() float64 { return b2f(b.setState.standby.Load()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "duomq_broker_replica_set_term", Help: "Leadership term of this broker's replica set (0: the broker is alone in its set).",
	}, func() float64 { return float64(b.setState.term.Load()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "duomq_broker_replica_set_in_sync_standbys", Help: "On a replica set's leader: the standbys in sync, which every send of a replicated topic waits for.",
	}, func() float64 { return float64(b.setState.inSync.Load()) }))
	reg.MustRegister(orderCollector{b}, newLagCollector(b))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "duomq_broker_commitlog_disk_bytes", Help: "Bytes of commitlog segments on disk.",
	}, func() float64 { return float64(b.clog.Metrics().DiskBytes) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "duomq_broker_dispatch_lag_bytes", Help: "Commitlog bytes written but not yet in consume queues.",
	}, func() float64 { return float64(b.clog.WrittenPos() - b.dispatched.Load()) }))
	return m
}

func (m *metrics) observeSend(topic string, n, bytes int, d time.Duration) {
	m.sentMessages.WithLabelValues(topic).Add(float64(n))
	m.sentBytes.WithLabelValues(topic).Add(float64(bytes))
	m.sendLatency.Observe(d.Seconds())
}

func (m *metrics) observeFsync(d time.Duration) { m.fsyncLatency.Observe(d.Seconds()) }

var (
	epochDesc = prometheus.NewDesc("duomq_broker_topic_epoch",
		"Fencing epoch of each ordered topic on this broker.", []string{"topic"}, nil)
	syncFollowersDesc = prometheus.NewDesc("duomq_broker_sync_followers",
		"Size of the in-sync set: follower DCs (the other DCs not marked down) in sync, which a sync send waits for, per sync-replicated topic whose primary is this broker's DC.", []string{"topic"}, nil)
	syncDegradedDesc = prometheus.NewDesc("duomq_broker_sync_degraded",
		"1 while a sync-replicated topic with sync policy degrade acks sends without a follower DC that is out of the in-sync set (an acked message may be in this DC only), else 0; per topic whose primary is this broker's DC.", []string{"topic"}, nil)
)

// orderCollector exports the fencing state of ordered topics and the
// in-sync sets of sync-replicated ones.
type orderCollector struct{ b *Broker }

func (c orderCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- epochDesc
	ch <- syncFollowersDesc
	ch <- syncDegradedDesc
}

func (c orderCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.b.Topics() {
		if t.Epoch > 0 {
			ch <- prometheus.MustNewConstMetric(epochDesc, prometheus.GaugeValue, float64(t.Epoch), t.Name)
		}
		if t.Order.Replication != "sync" || !t.Order.primaryIs(c.b.cfg.DC) {
			continue
		}
		out := c.b.isr.countOut(t.Name, t.Order.Followers)
		degraded := 0.0
		if out > 0 && t.Order.degrades() {
			degraded = 1
		}
		ch <- prometheus.MustNewConstMetric(syncFollowersDesc, prometheus.GaugeValue, float64(len(t.Order.Followers)-out), t.Name)
		ch <- prometheus.MustNewConstMetric(syncDegradedDesc, prometheus.GaugeValue, degraded, t.Name)
	}
}
