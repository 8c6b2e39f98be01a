package ingest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// headerMsg is a fetched message with headers (the rest of jetstream.Msg
// is not used by the insert spans).
type headerMsg struct {
	jetstream.Msg
	h nats.Header
}

func (m headerMsg) Headers() nats.Header { return m.h }
func (m headerMsg) Subject() string      { return "trueport.usage.events" }

// TestInsertSpans: a batch's insert is recorded once per sampled request
// whose context its messages carry (duplicates and malformed values
// skipped), each span a consumer child of the request's span; without a
// tracer (tracing off) the headers are not read.
func TestInsertSpans(t *testing.T) {
	const a, b = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b8-01"
	msgs := []jetstream.Msg{
		headerMsg{h: nats.Header{"traceparent": {a, "not-a-traceparent"}}},
		headerMsg{h: nats.Header{}},
		headerMsg{h: nats.Header{"traceparent": {b, a}}}, // a again: a redelivered event
	}
	in := &Ingester{}
	if spans := in.startInsertSpans(context.Background(), msgs, 5); spans != nil {
		t.Fatalf("tracing off: %d spans", len(spans))
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	in.SetTracerProvider(tp)
	spans := in.startInsertSpans(context.Background(), msgs, 5)
	endInsertSpans(spans, 4, 1, "")
	got := rec.Ended()
	if len(got) != 2 {
		t.Fatalf("%d spans, want 2", len(got))
	}
	for i, want := range []string{"00f067aa0ba902b7", "00f067aa0ba902b8"} {
		s := got[i]
		if s.Parent().SpanID().String() != want || !s.Parent().IsRemote() || s.SpanKind() != trace.SpanKindConsumer || s.Name() != "usage insert" {
			t.Errorf("span %d: parent %s remote=%v kind %v name %q", i, s.Parent().SpanID(), s.Parent().IsRemote(), s.SpanKind(), s.Name())
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		if attrs["messaging.batch.message_count"] != "3" || attrs["trueport.batch.events"] != "5" || attrs["trueport.batch.stored"] != "4" ||
			attrs["trueport.batch.dead_lettered"] != "1" {
			t.Errorf("span %d attributes %v", i, attrs)
		}
	}
}
