package ingest

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"trueportai/services/gateway/internal/analytics"
)

// IngestMetrics are the ingester's Prometheus series: what it stored, what
// it found already stored (redeliveries, spool replays), what it dropped,
// how long a batch took, and how far behind the stream it is.
type IngestMetrics struct {
	events       *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	batches      *prometheus.CounterVec
	batchSeconds prometheus.Histogram
	backlog      prometheus.Gauge
	waitingLoops prometheus.Gauge
	deferrals    prometheus.Counter
	deferredSecs prometheus.Counter
}

// NewIngestMetrics registers the ingester metrics on reg.
func NewIngestMetrics(reg prometheus.Registerer) *IngestMetrics {
	m := &IngestMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trueport_usage_ingested_events_total",
			Help: "Usage events taken from JetStream by result: inserted (new rows), duplicate (already stored), dead_lettered (not an event, or refused by Postgres: parked in the dead-letter stream).",
		}, []string{"result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trueport_usage_dead_letters_total",
			Help: "Usage events parked in the dead-letter stream by stage: decode (not a usage event), insert (refused by Postgres, isolated from its batch).",
		}, []string{"stage"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trueport_usage_ingest_batches_total",
			Help: "Ingest transactions by result: ok; refused (Postgres refused an event's data: the batch is bisected); failed (any other error: retried).",
		}, []string{"result"}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trueport_usage_ingest_batch_seconds", Help: "Duration of one ingest transaction (insert, rollups, violations, commit).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trueport_usage_ingest_backlog_messages",
			Help: "Usage messages in the stream not yet delivered to the ingester, as of its last batch.",
		}),
		waitingLoops: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trueport_usage_ingest_waiting_loops",
			Help: "Ingest loops waiting to retry their batch because Postgres or NATS is unreachable (they fetch nothing meanwhile).",
		}),
		deferrals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trueport_usage_ingest_deferrals_total",
			Help: "Times an ingest loop began deferring its fetches to heavy traffic (INGESTER_MAX_DELAY).",
		}),
		deferredSecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trueport_usage_ingest_deferred_seconds_total",
			Help: "Seconds ingest loops spent deferring their fetches to heavy traffic.",
		}),
	}
	reg.MustRegister(m.events, m.deadLetters, m.batches, m.batchSeconds, m.backlog, m.waitingLoops, m.deferrals, m.deferredSecs)
	return m
}

func (m *IngestMetrics) deferral() {
	if m != nil {
		m.deferrals.Inc()
	}
}

func (m *IngestMetrics) deferred(d time.Duration) {
	if m != nil {
		m.deferredSecs.Add(d.Seconds())
	}
}

func (m *IngestMetrics) deadLettered(stage string) {
	if m != nil {
		m.events.WithLabelValues("dead_lettered").Inc()
		m.deadLetters.WithLabelValues(stage).Inc()
	}
}

func (m *IngestMetrics) batch(took time.Duration, inserted, duplicate int, err error) {
	if m == nil {
		return
	}
	if errors.Is(err, analytics.ErrRefused) {
		m.batches.WithLabelValues("refused").Inc()
		return
	}
	if err != nil {
		m.batches.WithLabelValues("failed").Inc()
		return
	}
	m.batches.WithLabelValues("ok").Inc()
	m.batchSeconds.Observe(took.Seconds())
	m.events.WithLabelValues("inserted").Add(float64(inserted))
	m.events.WithLabelValues("duplicate").Add(float64(duplicate))
}

func (m *IngestMetrics) pending(n uint64) {
	if m != nil {
		m.backlog.Set(float64(n))
	}
}

func (m *IngestMetrics) waiting(on bool) {
	if m == nil {
		return
	}
	if on {
		m.waitingLoops.Inc()
	} else {
		m.waitingLoops.Dec()
	}
}
