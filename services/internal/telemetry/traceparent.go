package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceparentHeader is the W3C header (and NATS message header) name.
const TraceparentHeader = "traceparent"

// Traceparent formats sc as a W3C traceparent value ("" when invalid), for
// headers the services write themselves (the usage messages on NATS).
// Tracestate is not carried there.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc.WithTraceState(trace.TraceState{})), c)
	return c[TraceparentHeader]
}

// ParseTraceparent reads a W3C traceparent value written by Traceparent
// (by the other side of a services' own hop): a remote span context,
// ok=false when v is not one.
func ParseTraceparent(v string) (trace.SpanContext, bool) {
	if v == "" {
		return trace.SpanContext{}, false
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{TraceparentHeader: v}))
	return sc, sc.IsValid()
}
