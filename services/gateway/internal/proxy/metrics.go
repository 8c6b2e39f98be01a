package proxy

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/internal/metrics"
)

// Metrics are the proxy's Prometheus series.
type Metrics struct {
	requests *prometheus.CounterVec
	overhead prometheus.Histogram
	latency  *prometheus.HistogramVec
	// keepAlives counts the keep-alives written into silent streams.
	keepAlives prometheus.Counter

	// series caches the series of the label values seen so far:
	// WithLabelValues hashes its labels, takes the vector's lock (shared
	// by every request) and formats the status on every call. The sets of
	// providers, statuses and outcomes are small, so the cache is an
	// immutable map replaced on a miss.
	series   atomic.Pointer[map[seriesKey]requestSeries]
	seriesMu sync.Mutex // serialises misses
}

// seriesKey and requestSeries are a request's label values and its series.
type seriesKey struct {
	provider, outcome string
	status            int
}

type requestSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// requestSeries returns the series of a request's label values.
func (m *Metrics) requestSeries(provider string, status int, outcome string) requestSeries {
	k := seriesKey{provider, outcome, status}
	if cur := m.series.Load(); cur != nil {
		if s, ok := (*cur)[k]; ok {
			return s
		}
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	next := map[seriesKey]requestSeries{}
	if cur := m.series.Load(); cur != nil {
		if s, ok := (*cur)[k]; ok {
			return s
		}
		maps.Copy(next, *cur)
	}
	s := requestSeries{requests: m.requests.WithLabelValues(provider, strconv.Itoa(status), outcome),
		latency: m.latency.WithLabelValues(provider)}
	next[k] = s
	m.series.Store(&next)
	return s
}

// NewMetrics registers the proxy metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trueport_proxy_requests_total", Help: "Proxied requests by provider, status and outcome.",
		}, []string{"provider", "status", "outcome"}),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trueport_proxy_overhead_seconds", Help: "Time spent in the gateway, upstream excluded.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05},
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trueport_proxy_request_duration_seconds", Help: "Total proxied request duration by provider.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"provider"}),
		keepAlives: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trueport_proxy_stream_keepalives_total", Help: "Keep-alives written into streams silent toward their client.",
		}),
	}
	reg.MustRegister(m.requests, m.overhead, m.latency, m.keepAlives)
	return m
}

// observe records a request; span (tracing on) gives the latency an
// exemplar when sampled.
func (m *Metrics) observe(provider string, status int, outcome string, overheadMS, latencyMS float64, span trace.Span) {
	if m == nil {
		return
	}
	s := m.requestSeries(provider, status, outcome)
	s.requests.Inc()
	if overheadMS > 0 {
		m.overhead.Observe(overheadMS / 1000)
	}
	if span != nil {
		metrics.Observe(s.latency, latencyMS/1000, span.SpanContext())
		return
	}
	s.latency.Observe(latencyMS / 1000)
}

// keepAliveSent counts one keep-alive.
func (m *Metrics) keepAliveSent() {
	if m != nil {
		m.keepAlives.Inc()
	}
}
