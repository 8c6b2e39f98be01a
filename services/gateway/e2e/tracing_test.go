package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver (POST /v1/traces, protobuf):
// the services export to it exactly as they would to a collector, and it
// keeps every span it is sent.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []gotSpan
}

// gotSpan is a received span with its resource's service.name.
type gotSpan struct {
	service                   string
	name                      string
	kind                      tracepb.Span_SpanKind
	traceID, spanID, parentID string
	attrs                     map[string]string
	texts                     []string // name, attribute values, event names and attributes, status
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		var msg coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &msg)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&msg)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func anyText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func (r *otlpReceiver) add(msg *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = anyText(a.GetValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				g := gotSpan{service: service, name: s.GetName(), kind: s.GetKind(), traceID: hex.EncodeToString(s.GetTraceId()),
					spanID: hex.EncodeToString(s.GetSpanId()), parentID: hex.EncodeToString(s.GetParentSpanId()), attrs: map[string]string{},
					texts: []string{s.GetName(), s.GetStatus().GetMessage()}}
				for _, a := range s.GetAttributes() {
					g.attrs[a.GetKey()] = anyText(a.GetValue())
					g.texts = append(g.texts, anyText(a.GetValue()))
				}
				for _, e := range s.GetEvents() {
					g.texts = append(g.texts, e.GetName())
					for _, a := range e.GetAttributes() {
						g.texts = append(g.texts, anyText(a.GetValue()))
					}
				}
				r.spans = append(r.spans, g)
			}
		}
	}
}

// trace returns the spans received for traceID.
func (r *otlpReceiver) trace(traceID string) []gotSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []gotSpan
	for _, s := range r.spans {
		if s.traceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// env points a service's OTLP exporter at the receiver, every trace
// sampled, exported every 100 ms.
func (r *otlpReceiver) env() []string {
	return []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=" + r.srv.URL,
		"OTEL_TRACES_SAMPLER=parentbased_always_on", "OTEL_BSP_SCHEDULE_DELAY=100"}
}

// callTraced is call with a traceparent; it returns the status and the
// answer's traceparent.
func callTraced(t *testing.T, method, url, token, traceparent string, body any, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("traceparent")
}

// TestTracingAcrossServices runs both binaries with OTLP pointed at an
// in-test receiver and follows one client trace (its traceparent sent on
// every call) through a tenant selection on the platform, a key created on
// the gateway (gRPC token introspection and tenant context from the
// platform), and a chat completion through the proxy with the official
// OpenAI SDK (upstream call, usage event over NATS, ingester insert). The
// received spans must form one connected trace under the client's span,
// spanning both services and the ingester; the proxy span carries
// provider, model, key id and token counts, and no span holds the prompt,
// a key, a token or the credential. Every answer returns the trace; the
// provider is never sent it; the logs name it.
func TestTracingAcrossServices(t *testing.T) {
	t.Parallel()
	recv := newOTLPReceiver(t)
	s := newStack(t, recv.env()...)
	ts := s.setupTenant("tracing-" + randHex(3))

	traceID, clientSpan := randHex(16), randHex(8)
	tp := "00-" + traceID + "-" + clientSpan + "-01"
	returned := func(what, got string) {
		t.Helper()
		if !strings.HasPrefix(got, "00-"+traceID+"-") || strings.Contains(got, clientSpan) {
			t.Errorf("%s answered traceparent %q, want one of trace %s with the server's span", what, got, traceID)
		}
	}

	// 1. Platform REST: a new scoped token (not in the gateway's
	// introspection cache).
	var sel struct {
		Token string `json:"scoped_access_token"`
	}
	code, got := callTraced(t, "POST", s.platformURL+"/platform/api/global/auth/select-tenant", ts.globalToken, tp, map[string]string{"tenant_id": ts.tenantID}, &sel)
	if code != 200 {
		t.Fatalf("select-tenant: %d", code)
	}
	returned("select-tenant", got)

	// 2. Gateway management: a key (introspection and plan over gRPC).
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	code, got = callTraced(t, "POST", s.gatewayURL+"/trueportai-services/api/v1/keys", sel.Token, tp, map[string]any{"name": "traced"}, &key)
	if code != 201 {
		t.Fatalf("create key: %d", code)
	}
	returned("create key", got)

	// 3. The proxy, through the official SDK.
	const prompt = "TRACE-PROMPT-MARKER-5d1e please keep this sentence out of every span"
	var httpResp *http.Response
	client := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(key.Key),
		option.WithMaxRetries(0), option.WithHeader("traceparent", tp))
	comp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatalf("chat completion: %v", err)
	}
	returned("chat completion", httpResp.Header.Get("traceparent"))
	for _, h := range s.upstream.headers() {
		if h.Get("traceparent") != "" || h.Get("tracestate") != "" {
			t.Errorf("the provider was sent trace context: %q", h.Get("traceparent"))
		}
	}

	// Wait for every span expected (the usage event travels through
	// JetStream, the spans through each process's batch exporter).
	expected := []struct{ service, name string }{
		{"platform-backend", "POST /platform/api/global/auth/select-tenant"},
		{"platform-backend", "AuthService/IntrospectToken"}, {"platform-backend", "TenantService/GetTenantContext"},
		{"gateway", "POST /trueportai-services/api/v1/keys"}, {"gateway", "AuthService/IntrospectToken"},
		{"gateway", "TenantService/GetTenantContext"}, {"gateway", "proxy openai"}, {"gateway", "upstream openai"},
		{"gateway", "usage insert"},
	}
	var spans []gotSpan
	eventually(t, 30*time.Second, func() error {
		spans = recv.trace(traceID)
	next:
		for _, e := range expected {
			for _, sp := range spans {
				if sp.service == e.service && strings.HasSuffix(sp.name, e.name) {
					continue next
				}
			}
			return fmt.Errorf("%d spans of the trace, none %s %q yet", len(spans), e.service, e.name)
		}
		return nil
	})

	byID := map[string]gotSpan{}
	services := map[string]bool{}
	for _, sp := range spans {
		byID[sp.spanID] = sp
		services[sp.service] = true
	}
	if !services["gateway"] || !services["platform-backend"] {
		t.Errorf("services in the trace: %v, want gateway and platform-backend", services)
	}
	// Connected: every span hangs under the client's span through spans of
	// the trace.
	for _, sp := range spans {
		if sp.parentID != clientSpan && byID[sp.parentID].spanID == "" {
			t.Errorf("span %s/%q has parent %s, neither the client's span nor one of the trace", sp.service, sp.name, sp.parentID)
		}
	}
	find := func(service, name string, kind tracepb.Span_SpanKind) []gotSpan {
		var out []gotSpan
		for _, sp := range spans {
			if sp.service == service && strings.HasSuffix(sp.name, name) && sp.kind == kind {
				out = append(out, sp)
			}
		}
		return out
	}
	one := func(service, name string, kind tracepb.Span_SpanKind, parent string) gotSpan {
		t.Helper()
		found := find(service, name, kind)
		for _, sp := range found {
			if sp.parentID == parent {
				return sp
			}
		}
		t.Errorf("no %s span %q (%v) under %s; spans: %s", service, name, kind, parent, describe(spans))
		return gotSpan{}
	}
	server, client_ := tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CLIENT
	one("platform-backend", "POST /platform/api/global/auth/select-tenant", server, clientSpan)
	keys := one("gateway", "POST /trueportai-services/api/v1/keys", server, clientSpan)
	intro := one("gateway", "AuthService/IntrospectToken", client_, keys.spanID)
	one("platform-backend", "AuthService/IntrospectToken", server, intro.spanID)
	plan := one("gateway", "TenantService/GetTenantContext", client_, keys.spanID)
	one("platform-backend", "TenantService/GetTenantContext", server, plan.spanID)
	px := one("gateway", "proxy openai", server, clientSpan)
	one("gateway", "upstream openai", client_, px.spanID)
	one("gateway", "usage insert", tracepb.Span_SPAN_KIND_CONSUMER, px.spanID)

	want := map[string]string{"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "trueport.key_id": key.ID,
		"trueport.tenant_id": ts.tenantID, "http.response.status_code": "200",
		"gen_ai.usage.input_tokens": fmt.Sprint(comp.Usage.PromptTokens), "gen_ai.usage.output_tokens": fmt.Sprint(comp.Usage.CompletionTokens)}
	for k, v := range want {
		if px.attrs[k] != v {
			t.Errorf("proxy span %s = %q, want %q", k, px.attrs[k], v)
		}
	}
	for _, sp := range recv.trace(traceID) {
		for _, txt := range sp.texts {
			for _, secret := range []string{"TRACE-PROMPT-MARKER", "keep this sentence", key.Key, key.Key[3:], ts.apiKey, ts.credential, sel.Token, ts.globalToken} {
				if strings.Contains(txt, secret) {
					t.Errorf("span %s/%q holds a prompt, key, token or credential: %q", sp.service, sp.name, txt)
				}
			}
		}
	}
	for _, p := range []*proc{s.gateway, s.platform} {
		if !strings.Contains(p.logs(), `"trace_id":"`+traceID+`"`) {
			t.Errorf("%s logged nothing with trace_id %s", p.name, traceID)
		}
	}
}

func describe(spans []gotSpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n  %s %q %v span=%s parent=%s", s.service, s.name, s.kind, s.spanID, s.parentID)
	}
	return b.String()
}
