package ingest

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/internal/telemetry"
)

// maxInsertSpans bounds the insert spans of one batch (a backlog of
// sampled events drained after an outage must not flood the exporter).
const maxInsertSpans = 256

// SetTracerProvider turns tracing on: each batch insert is recorded as a
// span in the trace of every sampled request whose usage event the batch
// holds, found in the traceparent header of the messages (usage.Publisher
// writes one value per sampled event). Without it (tracing off) the
// headers are not read.
func (in *Ingester) SetTracerProvider(tp trace.TracerProvider) {
	in.tracer = tp.Tracer("trueportai/gateway/ingest")
}

// startInsertSpans starts the insert spans of a batch of events (none when
// tracing is off or no message carries a trace context).
func (in *Ingester) startInsertSpans(ctx context.Context, msgs []jetstream.Msg, events int) []trace.Span {
	if in.tracer == nil {
		return nil
	}
	var spans []trace.Span
	var seen map[trace.SpanID]bool
	for _, m := range msgs {
		for _, v := range m.Headers()[telemetry.TraceparentHeader] {
			sc, ok := telemetry.ParseTraceparent(v)
			if !ok || seen[sc.SpanID()] || len(spans) == maxInsertSpans {
				continue
			}
			if seen == nil {
				seen = map[trace.SpanID]bool{}
			}
			seen[sc.SpanID()] = true
			_, span := in.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, sc), "usage insert",
				trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
					attribute.String("messaging.system", "nats"),
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.destination.name", m.Subject()),
					attribute.Int("messaging.batch.message_count", len(msgs)),
					attribute.String("db.system.name", "postgresql"),
					attribute.String("db.operation.name", "INSERT"),
					attribute.Int("trueport.batch.events", events),
				))
			spans = append(spans, span)
		}
	}
	return spans
}

// endInsertSpans ends a batch's spans; failure (non-empty) says why the
// batch was not stored (it is redelivered).
func endInsertSpans(spans []trace.Span, stored, deadLettered int, failure string) {
	for _, s := range spans {
		s.SetAttributes(attribute.Int("trueport.batch.stored", stored), attribute.Int("trueport.batch.dead_lettered", deadLettered))
		if failure != "" {
			s.SetStatus(codes.Error, failure)
		}
		s.End()
	}
}
