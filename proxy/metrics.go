package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus series, registered on the registry
// given to New (never the global one).
type metrics struct {
	requests        *prometheus.CounterVec   // method, code
	requestDuration *prometheus.HistogramVec // method
	brokerDuration  *prometheus.HistogramVec // dc, call
	sent            *prometheus.CounterVec   // topic, dc
	received        *prometheus.CounterVec   // topic, dc
	sendDuration    *prometheus.HistogramVec // topic, dc
	deliveryDelay   *prometheus.HistogramVec // topic, dc
	fallbacks       *prometheus.CounterVec   // topic, dc
	throttled       *prometheus.CounterVec   // kind
	breakerState    *prometheus.GaugeVec     // dc, broker
	authRefusals    *prometheus.CounterVec   // reason
	staleEpochs     *prometheus.CounterVec   // topic
	popOverflow     prometheus.Counter
	handedBack      prometheus.Counter
	clients         prometheus.GaugeFunc
}

// latencyBuckets run from 50µs to about 6.5s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 18)

// delayBuckets run from 1ms to about 70 minutes: a backlog left while a
// DC was down is delivered hours late, and should still land in a bucket.
var delayBuckets = prometheus.ExponentialBuckets(0.001, 4, 12)

func newMetrics(reg prometheus.Registerer, clients func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_proxy_requests_total", Help: "Proxy API calls by method and gRPC code.",
		}, []string{"method", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duomq_proxy_request_duration_seconds", Help: "Latency of proxy API calls.", Buckets: latencyBuckets,
		}, []string{"method"}),
		brokerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duomq_proxy_broker_call_duration_seconds", Help: "Latency of the proxy's calls to brokers.", Buckets: latencyBuckets,
		}, []string{"dc", "call"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_proxy_sent_messages_total", Help: "Messages stored through this proxy, by topic and the DC that stored them.",
		}, []string{"topic", "dc"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_proxy_received_messages_total", Help: "Messages handed to consumers, by topic and the DC they came from.",
		}, []string{"topic", "dc"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_proxy_fallback_messages_total", Help: "Unordered messages written to another DC than the proxy's, by topic and that DC.",
		}, []string{"topic", "dc"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_proxy_throttled_total", Help: "Calls refused by a rate limit, by kind (topic, client).",
		}, []string{"kind"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "duomq_proxy_breaker_state", Help: "Circuit breaker per broker: 0 closed, 1 half-open, 2 open.",
		}, []string{"dc", "broker"}),
		authRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_proxy_auth_refusals_total", Help: "Calls refused by authentication or permission, by reason.",
		}, []string{"reason"}),
		staleEpochs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duomq_proxy_stale_epoch_total", Help: "Ordered sends refused by a broker for a stale epoch (then retried once with a re-read epoch).",
		}, []string{"topic"}),
		sendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duomq_proxy_send_duration_seconds", Help: "Latency of successful sends, from the call to the ack, by topic and the DC that stored the messages.", Buckets: latencyBuckets,
		}, []string{"topic", "dc"}),
		deliveryDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duomq_proxy_delivery_delay_seconds", Help: "Time from a message's store (or its due time, when delayed) to its hand-over to a consumer, by topic and the DC that stored it.", Buckets: delayBuckets,
		}, []string{"topic", "dc"}),
		popOverflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_proxy_receive_overflow_messages_total",
			Help: "Messages returned beyond a receive's max_messages because several brokers answered its long poll at once.",
		}),
		handedBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duomq_proxy_receive_handed_back_messages_total",
			Help: "Messages received for a caller that had gone, or popped by a broker call that was cancelled or timed out (ReleasePop), made visible again at once instead of at the end of their invisibility.",
		}),
		clients: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "duomq_proxy_clients", Help: "Clients that heartbeated within the client TTL.",
		}, clients),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestDuration, m.brokerDuration, m.sent, m.received, m.sendDuration, m.deliveryDelay, m.fallbacks,
			m.throttled, m.breakerState, m.authRefusals, m.staleEpochs, m.popOverflow, m.handedBack, m.clients)
	}
	return m
}
