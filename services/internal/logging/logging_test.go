package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestRecordsCarryTraceID: a record logged with a context holding a span
// (tracing on) names its trace and span; without one it names none.
func TestRecordsCarryTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "info", "json")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	ctx = WithAttrs(ctx, slog.String("request_id", "r1"))
	log.InfoContext(ctx, "traced")
	log.InfoContext(context.Background(), "untraced")
	dec := json.NewDecoder(&buf)
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	if rec["trace_id"] != tid.String() || rec["span_id"] != sid.String() || rec["request_id"] != "r1" {
		t.Errorf("traced record %v", rec)
	}
	rec = nil
	if err := dec.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec["trace_id"]; ok {
		t.Errorf("untraced record %v", rec)
	}
}
