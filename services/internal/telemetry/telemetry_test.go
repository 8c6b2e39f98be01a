package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestFromEnvOffByDefault: no exporter asked for, or asked off → nil
// (tracing off); an OTLP endpoint or OTEL_TRACES_EXPORTER=otlp → on;
// values the services do not support fail the start.
func TestFromEnvOffByDefault(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
		err  string
	}{
		{"nothing set", nil, false, ""},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, false, ""},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"exporter otlp grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"ratio", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, true, ""},
		{"zipkin", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "OTEL_TRACES_EXPORTER"},
		{"http/json", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"bad ratio", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, false, "OTEL_TRACES_SAMPLER_ARG"},
		{"bad sampler", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "jaeger_remote"}, false, "OTEL_TRACES_SAMPLER"},
		{"bad budget", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "TRACES_MAX_PER_SECOND": "-1"}, false, "TRACES_MAX_PER_SECOND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel, err := FromEnv(ctx, env(tc.env), "test")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tel.Enabled() != tc.on {
				t.Fatalf("enabled = %v, want %v", tel.Enabled(), tc.on)
			}
			if err := tel.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	if r, _ := ratio(env(map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})); r != 0.25 {
		t.Errorf("ratio = %v, want 0.25", r)
	}
}

// newRecorded is an enabled Telemetry whose spans land in a recorder.
func newRecorded(cfg Config) (*Telemetry, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	cfg.SpanProcessor = rec
	if cfg.Service == "" {
		cfg.Service = "test"
	}
	return New(cfg), rec
}

func newEcho(tel *Telemetry) *echo.Echo {
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("X-Request-Id", "req-1")
			return next(c)
		}
	})
	e.Use(tel.Middleware())
	e.GET("/things/:id", func(c echo.Context) error {
		// The handler's context carries the server span.
		if !trace.SpanContextFromContext(c.Request().Context()).IsValid() && tel.Enabled() {
			return c.String(http.StatusInternalServerError, "no span in the handler's context")
		}
		return c.String(http.StatusOK, "ok")
	})
	e.GET("/health", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
}

const (
	clientTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientParent = "00f067aa0ba902b7"
)

// TestClientTraceparentHonouredAndReturned: a client's traceparent makes
// the server span a child of the client's span in the client's trace, and
// the response carries the server span's own traceparent.
func TestClientTraceparentHonouredAndReturned(t *testing.T) {
	tel, rec := newRecorded(Config{Ratio: 1})
	e := newEcho(tel)
	req := httptest.NewRequest(http.MethodGet, "/things/42", nil)
	req.Header.Set("traceparent", "00-"+clientTrace+"-"+clientParent+"-01")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanContext().TraceID().String() != clientTrace || s.Parent().SpanID().String() != clientParent || !s.Parent().IsRemote() {
		t.Errorf("span trace %s parent %s, want the client's %s / %s", s.SpanContext().TraceID(), s.Parent().SpanID(), clientTrace, clientParent)
	}
	if s.Name() != "GET /things/:id" || s.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q kind %v", s.Name(), s.SpanKind())
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["http.route"] != "/things/:id" || attrs["http.response.status_code"] != "200" || attrs["trueport.request_id"] != "req-1" {
		t.Errorf("attributes %v", attrs)
	}
	want := "00-" + clientTrace + "-" + s.SpanContext().SpanID().String() + "-01"
	if got := w.Header().Get("traceparent"); got != want {
		t.Errorf("response traceparent %q, want %q", got, want)
	}

	// Without a traceparent the span starts a trace, returned as well.
	w = httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/things/43", nil))
	s = rec.Ended()[1]
	if s.Parent().IsValid() || w.Header().Get("traceparent") != "00-"+s.SpanContext().TraceID().String()+"-"+s.SpanContext().SpanID().String()+"-01" {
		t.Errorf("new trace: parent %v, response traceparent %q", s.Parent(), w.Header().Get("traceparent"))
	}

	// Health probes are not traced.
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/health", nil))
	if n := len(rec.Ended()); n != 2 {
		t.Errorf("%d spans after a health probe, want 2", n)
	}
}

// TestOffPaysNothing: a nil Telemetry neither reads nor returns
// traceparent, and starts no span.
func TestOffPaysNothing(t *testing.T) {
	var tel *Telemetry
	e := newEcho(tel)
	req := httptest.NewRequest(http.MethodGet, "/things/42", nil)
	req.Header.Set("traceparent", "00-"+clientTrace+"-"+clientParent+"-01")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusOK || w.Header().Get("traceparent") != "" {
		t.Errorf("off: status %d, traceparent %q", w.Code, w.Header().Get("traceparent"))
	}
	if tel.GRPCServerOptions() != nil || tel.GRPCDialOptions() != nil || tel.Enabled() {
		t.Error("off: gRPC options or enabled")
	}
	ctx := tel.Extract(context.Background(), req.Header)
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("off: Extract read the client's context")
	}
}

// TestClientCannotForceSampling is the attacker's view: a client sending
// traceparents flagged sampled (or trace ids it chose to pass a trace-id
// ratio) gets no more traces recorded than the ratio and the budgets give.
func TestClientCannotForceSampling(t *testing.T) {
	// Ratio 0: only the client budget (5/s) records flagged requests.
	tel, rec := newRecorded(Config{Ratio: 0, ClientSampledPerSecond: 5})
	e := newEcho(tel)
	start := time.Now()
	for i := range 1000 {
		req := httptest.NewRequest(http.MethodGet, "/things/1", nil)
		req.Header.Set("traceparent", "00-"+clientTrace+"-"+clientParent+"-01")
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if i == 999 && !strings.HasSuffix(w.Header().Get("traceparent"), "-00") {
			t.Errorf("the 1000th flagged request was sampled: %q", w.Header().Get("traceparent"))
		}
	}
	allowed := 5 + 5*time.Since(start).Seconds() + 1
	if n := len(rec.Ended()); float64(n) > allowed || n < 5 {
		t.Errorf("%d of 1000 client-flagged requests recorded, want 5…%.0f", n, allowed)
	}
	// Unflagged with ratio 0: nothing.
	before := len(rec.Ended())
	for range 100 {
		req := httptest.NewRequest(http.MethodGet, "/things/1", nil)
		req.Header.Set("traceparent", "00-"+clientTrace+"-"+clientParent+"-00")
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
	if n := len(rec.Ended()) - before; n != 0 {
		t.Errorf("%d unflagged requests recorded at ratio 0", n)
	}

	// Ratio 0.05 with trace ids chosen to pass a trace-id ratio (all zero
	// low bits): the draw is random, so about 5 % pass, not all.
	tel, rec = newRecorded(Config{Ratio: 0.05, MaxPerSecond: 1e6, ClientSampledPerSecond: -1})
	e = newEcho(tel)
	for range 2000 {
		req := httptest.NewRequest(http.MethodGet, "/things/1", nil)
		req.Header.Set("traceparent", "00-ffffffffffffffff0000000000000001-"+clientParent+"-01")
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
	if n := len(rec.Ended()); n > 250 {
		t.Errorf("%d of 2000 requests with low trace ids recorded at ratio 0.05", n)
	}

	// The budget caps what the ratio picks: ratio 1, 20/s.
	tel, rec = newRecorded(Config{Ratio: 1, MaxPerSecond: 20, ClientSampledPerSecond: -1})
	e = newEcho(tel)
	start = time.Now()
	for range 500 {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/things/1", nil))
	}
	if n, allowed := len(rec.Ended()), 20+20*time.Since(start).Seconds()+1; float64(n) > allowed || n < 20 {
		t.Errorf("%d of 500 requests recorded with a budget of 20/s, want 20…%.0f", n, allowed)
	}
}

// TestSamplerFollowsParentsStartsNoBackgroundTrace: a span with a parent
// follows it (the services' own hops); a root that is not a server span
// (a background gRPC call, a consumer) records nothing.
func TestSamplerFollowsParentsStartsNoBackgroundTrace(t *testing.T) {
	tel, rec := newRecorded(Config{Ratio: 1})
	tr := tel.Tracer("t")
	_, bg := tr.Start(context.Background(), "cache refresh", trace.WithSpanKind(trace.SpanKindClient))
	bg.End()
	if bg.SpanContext().IsSampled() || len(rec.Ended()) != 0 {
		t.Error("a background root span was recorded")
	}
	for _, sampled := range []bool{true, false} {
		sc, _ := ParseTraceparent("00-" + clientTrace + "-" + clientParent + map[bool]string{true: "-01", false: "-00"}[sampled])
		_, s := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), sc), "grpc server", trace.WithSpanKind(trace.SpanKindServer))
		s.End()
		if s.SpanContext().IsSampled() != sampled || s.SpanContext().TraceID() != sc.TraceID() {
			t.Errorf("parent sampled=%v: span sampled=%v trace %s", sampled, s.SpanContext().IsSampled(), s.SpanContext().TraceID())
		}
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	sc, ok := ParseTraceparent("00-" + clientTrace + "-" + clientParent + "-01")
	if !ok || !sc.IsRemote() || !sc.IsSampled() {
		t.Fatalf("parse: %v %v", sc, ok)
	}
	if got := Traceparent(sc); got != "00-"+clientTrace+"-"+clientParent+"-01" {
		t.Errorf("format: %q", got)
	}
	for _, bad := range []string{"", "00-" + clientTrace, "zz-" + clientTrace + "-" + clientParent + "-01", "00-00000000000000000000000000000000-" + clientParent + "-01"} {
		if _, ok := ParseTraceparent(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	if Traceparent(trace.SpanContext{}) != "" {
		t.Error("an invalid context formatted")
	}
}

// keepingExporter keeps what it is given, through Shutdown (the in-memory
// exporter of tracetest clears itself then).
type keepingExporter struct {
	mu    sync.Mutex
	spans []sdktrace.ReadOnlySpan
}

func (e *keepingExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans = append(e.spans, s...)
	return nil
}

func (*keepingExporter) Shutdown(context.Context) error { return nil }

// TestShutdownFlushes: spans still queued in the batcher are exported by
// Shutdown (graceful stop).
func TestShutdownFlushes(t *testing.T) {
	exp := &keepingExporter{}
	tel := New(Config{Service: "test", Exporter: exp, Ratio: 1})
	_, s := tel.Tracer("t").Start(context.Background(), "request", trace.WithSpanKind(trace.SpanKindServer))
	s.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if len(exp.spans) != 1 || exp.spans[0].Name() != "request" {
		t.Errorf("exported %v", exp.spans)
	}
}
