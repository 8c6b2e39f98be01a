package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/internal/telemetry"
)

const (
	traceClientID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceClientParent = "00f067aa0ba902b7"
	// tracePrompt must never reach a span.
	tracePrompt = "PROMPT-MARKER-7f3a my card 4111 1111 1111 1111"
)

// tracedHarness is the benchmark harness with tracing on, its spans in a
// recorder.
func tracedHarness(tb testing.TB, body string) (*benchHarness, *tracetest.SpanRecorder) {
	tb.Helper()
	h := newBenchHarness(tb, body)
	rec := tracetest.NewSpanRecorder()
	opts := h.p.opts
	opts.Telemetry = telemetry.New(telemetry.Config{Service: "gateway", SpanProcessor: rec, Ratio: 1, MaxPerSecond: 1e9})
	h.p = New(slog.New(slog.DiscardHandler), h.p.keys, h.p.tenants, h.p.limiter, h.pub, opts)
	return h, rec
}

// TestTracedRequest: a proxied request is a server span in the client's
// trace (traceparent honoured) with the upstream call as its child; the
// span's traceparent is returned and travels with the usage event; the
// attributes name provider, model, key and token counts, and no attribute,
// name or event holds the prompt, the caller's key or the tenant's
// credential.
func TestTracedRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		stream bool
	}{
		{"json", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + tracePrompt + `"}]}`, false},
		{"stream", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + tracePrompt + `"}]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rec := tracedHarness(t, tc.body)
			h.req.Header.Set("traceparent", "00-"+traceClientID+"-"+traceClientParent+"-01")
			h.check(t, tc.stream)
			spans := rec.Ended()
			if len(spans) != 2 {
				t.Fatalf("%d spans, want 2 (server, upstream)", len(spans))
			}
			up, srv := spans[0], spans[1]
			if srv.SpanKind() != trace.SpanKindServer || up.SpanKind() != trace.SpanKindClient {
				t.Fatalf("kinds %v, %v", srv.SpanKind(), up.SpanKind())
			}
			if srv.SpanContext().TraceID().String() != traceClientID || srv.Parent().SpanID().String() != traceClientParent {
				t.Errorf("server span in trace %s under %s, want the client's", srv.SpanContext().TraceID(), srv.Parent().SpanID())
			}
			if up.Parent().SpanID() != srv.SpanContext().SpanID() || up.SpanContext().TraceID() != srv.SpanContext().TraceID() {
				t.Error("upstream span is not the server span's child")
			}
			if got, want := h.w.h.Get("traceparent"), "00-"+traceClientID+"-"+srv.SpanContext().SpanID().String()+"-01"; got != want {
				t.Errorf("response traceparent %q, want %q", got, want)
			}
			if ev, want := h.pub.last, "00-"+traceClientID+"-"+srv.SpanContext().SpanID().String()+"-01"; ev.Traceparent != want {
				t.Errorf("usage event traceparent %q, want the server span's %q", ev.Traceparent, want)
			}
			attrs := map[string]string{}
			for _, a := range srv.Attributes() {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			ev := h.pub.last
			want := map[string]string{
				"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "trueport.key_id": ev.KeyID,
				"trueport.tenant_id": ev.TenantID, "http.response.status_code": "200", "trueport.outcome": "ok",
				"gen_ai.usage.input_tokens": itoa64(*ev.PromptTokens), "gen_ai.usage.output_tokens": itoa64(*ev.CompletionTokens),
				"trueport.request_id": ev.RequestID,
			}
			for k, v := range want {
				if attrs[k] != v {
					t.Errorf("server span %s = %q, want %q", k, attrs[k], v)
				}
			}
			if srv.Name() != "proxy openai" || up.Name() != "upstream openai" {
				t.Errorf("names %q, %q", srv.Name(), up.Name())
			}
			for _, s := range spans {
				texts := []string{s.Name(), s.Status().Description}
				for _, a := range s.Attributes() {
					texts = append(texts, a.Value.Emit())
				}
				for _, e := range s.Events() {
					texts = append(texts, e.Name)
					for _, a := range e.Attributes {
						texts = append(texts, a.Value.Emit())
					}
				}
				for _, txt := range texts {
					for _, secret := range []string{"PROMPT-MARKER", "4111", benchSecret, benchSecret[3:], "sk-upstream-bench"} {
						if strings.Contains(txt, secret) {
							t.Errorf("span %q holds %q in %q", s.Name(), secret, txt)
						}
					}
				}
			}
		})
	}
}

// TestUntracedRequest: tracing off, a client's traceparent is neither
// read nor answered, and the event carries no trace.
func TestUntracedRequest(t *testing.T) {
	h := newBenchHarness(t, benchJSONBody)
	h.req.Header.Set("traceparent", "00-"+traceClientID+"-"+traceClientParent+"-01")
	h.check(t, false)
	if h.w.h.Get("traceparent") != "" || h.pub.last.Traceparent != "" {
		t.Errorf("off: response traceparent %q, event traceparent %q", h.w.h.Get("traceparent"), h.pub.last.Traceparent)
	}
}

// TestTracedRefusal: a request the gateway refuses is traced with its
// status and outcome (no upstream span).
func TestTracedRefusal(t *testing.T) {
	h, rec := tracedHarness(t, benchJSONBody)
	h.req.Header.Set("Authorization", "Bearer sk-not-a-key")
	h.serve()
	spans := rec.Ended()
	if h.w.status != 401 || len(spans) != 1 {
		t.Fatalf("status %d, %d spans", h.w.status, len(spans))
	}
	attrs := map[string]string{}
	for _, a := range spans[0].Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["http.response.status_code"] != "401" || attrs["trueport.outcome"] != "error" {
		t.Errorf("attributes %v", attrs)
	}
	if h.w.h.Get("traceparent") == "" {
		t.Error("no traceparent on a refusal")
	}
}

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }

// discardExporter drops exported spans (the batcher's work is measured,
// not a collector's).
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// benchTraced is benchProxy with tracing on: every request sampled
// (ratio 1, no budget reached) or none (ratio 0), spans batched to a
// discarding exporter as OTLP would get them.
func benchTraced(b *testing.B, body string, stream bool, ratio float64) {
	h := newBenchHarness(b, body)
	tel := telemetry.New(telemetry.Config{Service: "gateway", Exporter: discardExporter{}, Ratio: ratio, MaxPerSecond: 1e12})
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	opts := h.p.opts
	opts.Telemetry = tel
	h.p = New(slog.New(slog.DiscardHandler), h.p.keys, h.p.tenants, h.p.limiter, h.pub, opts)
	h.check(b, stream)
	b.ReportAllocs()
	b.SetBytes(int64(len(h.up.body)))
	b.ResetTimer()
	for b.Loop() {
		h.serve()
	}
}

// BenchmarkProxyJSONTraced and BenchmarkProxyStreamTraced are
// BenchmarkProxyJSON/Stream with tracing on and every request sampled;
// the Unsampled forms with tracing on and none sampled (ratio 0). The
// untraced benchmarks are the tracing-off figures.
func BenchmarkProxyJSONTraced(b *testing.B)            { benchTraced(b, benchJSONBody, false, 1) }
func BenchmarkProxyStreamTraced(b *testing.B)          { benchTraced(b, benchStreamBody, true, 1) }
func BenchmarkProxyJSONTracedUnsampled(b *testing.B)   { benchTraced(b, benchJSONBody, false, 0) }
func BenchmarkProxyStreamTracedUnsampled(b *testing.B) { benchTraced(b, benchStreamBody, true, 0) }

// tracingUpstream answers as the canned upstream, with its own trace
// context in the headers.
type tracingUpstream struct{ *cannedUpstream }

func (u tracingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := u.cannedUpstream.RoundTrip(r)
	if err == nil {
		resp.Header.Set("Traceparent", "00-11111111111111111111111111111111-2222222222222222-01")
		resp.Header.Set("Tracestate", "provider=1")
	}
	return resp, err
}

// TestProviderTraceContextNotRelayed: a provider's traceparent is not the
// client's trace: off, the answer has none; on, the gateway's.
func TestProviderTraceContextNotRelayed(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := newBenchHarness(t, benchJSONBody)
		opts := h.p.opts
		opts.Transport = tracingUpstream{h.up}
		if on {
			opts.Telemetry = telemetry.New(telemetry.Config{Service: "gateway", SpanProcessor: tracetest.NewSpanRecorder(), Ratio: 1})
		}
		h.p = New(slog.New(slog.DiscardHandler), h.p.keys, h.p.tenants, h.p.limiter, h.pub, opts)
		h.check(t, false)
		got := h.w.h.Get("Traceparent")
		if strings.Contains(got, "1111111111") || h.w.h.Get("Tracestate") != "" || (got != "") != on {
			t.Errorf("tracing on=%v: answered traceparent %q, tracestate %q", on, got, h.w.h.Get("Tracestate"))
		}
	}
}
