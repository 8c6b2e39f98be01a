package telemetry

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// edge decides which traces a process starts recording: a share (ratio) of
// the requests it receives, drawn at random (never from the trace id, which
// a client may choose), within two per-second budgets: one for the traces
// picked by the ratio, one for the traces recorded only because a client's
// traceparent asked. Whatever clients send, a process records at most
// max + client traces per second of its own making.
type edge struct {
	ratio float64

	mu              sync.Mutex
	picked, clients bucket
}

// bucket is a token bucket of rate tokens per second (burst: one second's).
type bucket struct {
	rate, tokens float64
	last         time.Time
}

func newEdge(ratio, maxPerSecond, clientPerSecond float64) *edge {
	return &edge{ratio: min(max(ratio, 0), 1), picked: bucket{rate: maxPerSecond, tokens: maxPerSecond},
		clients: bucket{rate: clientPerSecond, tokens: clientPerSecond}}
}

// take spends a token if one is left (e.mu held).
func (b *bucket) take(now time.Time) bool {
	if b.rate <= 0 {
		return false
	}
	if !b.last.IsZero() {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sample decides for one new trace; clientAsked is the sampled flag of the
// client's traceparent.
func (e *edge) sample(clientAsked bool, now time.Time) bool {
	picked := e.ratio >= 1 || (e.ratio > 0 && rand.Float64() < e.ratio)
	if !picked && !clientAsked {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if picked && e.picked.take(now) {
		return true
	}
	return clientAsked && e.clients.take(now)
}

// sampler is the tracer provider's sampler. A span with a parent follows
// its parent's decision: within a process, and across the services' own
// hops (gRPC between them, NATS messages) whose trace context comes from
// the other service. A client's traceparent is never such a parent as it
// arrived: Extract rewrote its sampled flag with the edge's decision first.
// A span without a parent is a new trace only when it serves a request
// (server kind): it is sampled by the edge. Background work (cache
// refreshes, consumers without a sampled parent) starts no trace.
type sampler struct{ edge *edge }

func (s sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	var sampled bool
	switch {
	case psc.IsValid():
		sampled = psc.IsSampled()
	case p.Kind == trace.SpanKindServer:
		sampled = s.edge.sample(false, time.Now())
	}
	if sampled {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: psc.TraceState()}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: psc.TraceState()}
}

func (s sampler) Description() string { return "TruePortAIEdgeSampler" }

// Extract reads a client's W3C traceparent (and tracestate) from h and
// returns ctx carrying it as the remote parent of the server span to start:
// the trace continues (same trace id, the client's span as parent), but
// the sampled flag is the edge's decision, the client's flag being only a
// request (honoured within TRACES_CLIENT_SAMPLED_PER_SECOND). So a client
// cannot make a process record (and export) more traces than the ratio and
// the budgets allow, whatever it sends. Without a valid traceparent ctx is
// returned as is and the span starts a new trace. Off: ctx as is.
func (t *Telemetry) Extract(ctx context.Context, h http.Header) context.Context {
	if !t.Enabled() || h.Get("Traceparent") == "" {
		return ctx
	}
	sc := trace.SpanContextFromContext(t.prop.Extract(ctx, propagation.HeaderCarrier(h)))
	if !sc.IsValid() {
		return ctx
	}
	flags := sc.TraceFlags().WithSampled(t.edge.sample(sc.IsSampled(), time.Now()))
	return trace.ContextWithRemoteSpanContext(ctx, sc.WithTraceFlags(flags))
}
