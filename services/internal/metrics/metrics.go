// Package metrics exposes Prometheus metrics: a per-service registry, an echo
// middleware for REST routes, and the /metrics handler (OpenMetrics when the
// scraper asks, so that duration histograms carry trace exemplars).
package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Registry is a service's metric registry with Go and process collectors.
// Besides the Go collector's defaults it exports the scheduler's latency
// histogram (go_sched_latencies_seconds: how long runnable goroutines
// waited for a CPU), the figure that tells a tail caused by the process's
// own CPU contention from one caused upstream or in the network.
type Registry struct {
	*prometheus.Registry
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
}

// New returns a registry for service (used as a constant label).
func New(service string) *Registry {
	reg := prometheus.NewRegistry()
	goc := collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$`)}))
	reg.MustRegister(goc, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := &Registry{Registry: reg}
	r.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trueport_http_requests_total", Help: "REST requests by route and status.", ConstLabels: prometheus.Labels{"service": service},
	}, []string{"method", "route", "status"})
	r.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "trueport_http_request_duration_seconds", Help: "REST request duration by route.", ConstLabels: prometheus.Labels{"service": service},
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
	}, []string{"method", "route"})
	reg.MustRegister(r.httpRequests, r.httpDuration)
	return r
}

// Middleware records every REST request by its route pattern (not the raw
// path, which would explode cardinality). Install it outside the middleware
// that renders errors, so the final status is seen (httpserver.New does).
func (r *Registry) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			r.httpRequests.WithLabelValues(c.Request().Method, route, strconv.Itoa(c.Response().Status)).Inc()
			Observe(r.httpDuration.WithLabelValues(c.Request().Method, route), time.Since(start).Seconds(), trace.SpanContextFromContext(c.Request().Context()))
			return err
		}
	}
}

// Observe records v on o, with the trace id of sc as exemplar when sc is
// a sampled span (tracing on; the span the request's server span or a
// child of it): a latency bucket then links to a trace that fell in it.
func Observe(o prometheus.Observer, v float64, sc trace.SpanContext) {
	if sc.IsSampled() {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
			return
		}
	}
	o.Observe(v)
}

// Handler serves the registry in the Prometheus text format, or in
// OpenMetrics (with exemplars) to a scraper that asks for it.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.Registry, promhttp.HandlerOpts{Registry: r.Registry, EnableOpenMetrics: true})
}
