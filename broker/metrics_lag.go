package broker

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	consumerLagDesc = prometheus.NewDesc("duomq_broker_consumer_lag_messages",
		"Messages stored after a consumer group's committed offsets, per group and topic, summed over this broker's queues (internal groups left out).",
		[]string{"group", "topic"}, nil)
	consumerLagAgeDesc = prometheus.NewDesc("duomq_broker_consumer_lag_seconds",
		"Age of the oldest message a consumer group has not consumed (backlog age), per group and topic: the store time of the first message after its committed offset, the oldest over this broker's queues; 0 when caught up.",
		[]string{"group", "topic"}, nil)
)

// lagCollector exports consumer lag at scrape time from the committed
// offsets and the queues' ends. Labels are group and topic names, which
// operators create. The backlog age needs the store time of the first
// unconsumed message of each queue; it is read from the commitlog once per
// committed offset and remembered until the offset moves, so a group that
// is not consuming costs no read per scrape.
type lagCollector struct {
	b *Broker

	mu     sync.Mutex
	stored map[lagKey]storedAt // per queue of a group: the store time at its committed offset
}

type lagKey struct {
	group, topic string
	queue        uint32
}

// storedAt is the store time (unix nanos) of the message at offset; 0 when
// it could not be read (the queue then has no age).
type storedAt struct {
	offset int64
	nanos  int64
}

type lagSum struct {
	messages int64
	oldest   int64 // unix nanos of the oldest unconsumed message; 0: none
}

func newLagCollector(b *Broker) *lagCollector {
	return &lagCollector{b: b, stored: map[lagKey]storedAt{}}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- consumerLagDesc
	ch <- consumerLagAgeDesc
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	sums := c.gather()
	now := time.Now().UnixNano()
	for k, s := range sums {
		ch <- prometheus.MustNewConstMetric(consumerLagDesc, prometheus.GaugeValue, float64(s.messages), k[0], k[1])
		age := 0.0
		if s.oldest > 0 {
			age = max(time.Duration(now-s.oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(consumerLagAgeDesc, prometheus.GaugeValue, age, k[0], k[1])
	}
}

// gather sums the lag of every committed offset by (group, topic).
func (c *lagCollector) gather() map[[2]string]lagSum {
	c.mu.Lock()
	defer c.mu.Unlock()
	sums := map[[2]string]lagSum{}
	stored := make(map[lagKey]storedAt, len(c.stored))
	for _, e := range c.b.offs.Snapshot() {
		if strings.HasPrefix(e.Group, "%") {
			continue // the scheduler's progress, not a consumer's
		}
		cq, err := c.b.queueOf(e.Topic, e.Queue)
		if err != nil {
			continue // topic or queue gone; its offsets go with it
		}
		from := max(e.Offset, cq.MinOffset()) // retention may have removed what it points to
		k := [2]string{e.Group, e.Topic}
		s := sums[k]
		if n := cq.MaxOffset() - from; n > 0 {
			s.messages += n
			key := lagKey{e.Group, e.Topic, e.Queue}
			at, ok := c.stored[key]
			if !ok || at.offset != from {
				at = storedAt{offset: from}
				if m, err := c.b.readOffset(cq, e.Topic, e.Queue, from); err == nil {
					at.nanos = m.StoreTime
				}
			}
			stored[key] = at
			if at.nanos > 0 && (s.oldest == 0 || at.nanos < s.oldest) {
				s.oldest = at.nanos
			}
		}
		sums[k] = s
	}
	c.stored = stored
	return sums
}
