package proxy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/telemetry"
)

// Tracing of proxied requests (Options.Telemetry on). Each request is a
// server span (the client's traceparent honoured, the span's own returned
// in the response headers: telemetry.StartServer) with one child for the
// upstream call; the usage event carries the server span's context to the
// ingester's insert span. Attributes are the provider, model, key id,
// tenant id, status, outcome and token counts: never a prompt, a body, a
// header value or a key. The trace context is not sent upstream: the
// providers are third parties.
//
// Off, none of this runs: ServeHTTP, forward and record test c.tr (nil)
// once each, and the call and the usage event are the size they were.

// callTrace is the spans of a traced call.
type callTrace struct {
	span trace.Span // the request's server span
	up   trace.Span // its upstream call's (sampled requests only)
}

// serverSpan is the request's span, nil when tracing is off.
func (t *callTrace) serverSpan() trace.Span {
	if t == nil {
		return nil
	}
	return t.span
}

// traceparent is the W3C context of the request's span when it is sampled
// (what the usage event carries to the ingester), else "".
func (t *callTrace) traceparent() string {
	if sc := t.span.SpanContext(); sc.IsSampled() {
		return telemetry.Traceparent(sc)
	}
	return ""
}

// Span attribute keys of the proxy (OpenTelemetry's GenAI conventions
// where they exist).
const (
	attrProvider     = attribute.Key("gen_ai.provider.name")
	attrModel        = attribute.Key("gen_ai.request.model")
	attrInputTokens  = attribute.Key("gen_ai.usage.input_tokens")
	attrOutputTokens = attribute.Key("gen_ai.usage.output_tokens")
	attrTotalTokens  = attribute.Key("trueport.usage.total_tokens")
	attrKeyID        = attribute.Key("trueport.key_id")
	attrEnv          = attribute.Key("trueport.env")
	attrStream       = attribute.Key("trueport.stream")
	attrOutcome      = attribute.Key("trueport.outcome")
	attrErrorCode    = attribute.Key("trueport.error_code")
	attrTTFB         = attribute.Key("trueport.ttfb_ms")
)

// startTrace starts the request's server span; the returned request
// carries it (upstream span, log records).
func (p *Proxy) startTrace(w http.ResponseWriter, r *http.Request, c *call) *http.Request {
	ctx, span := p.opts.Telemetry.StartServer(r.Context(), p.tracer, "proxy", r.Header, w.Header(),
		telemetry.AttrMethod.String(r.Method), telemetry.AttrRequestID.String(c.requestID))
	c.tr = &callTrace{span: span}
	return r.WithContext(ctx)
}

// endTrace names the server span after its provider, records what the
// call became and ends it.
func (p *Proxy) endTrace(c *call) {
	span := c.tr.span
	if !span.IsRecording() { // not sampled: nothing to record
		span.End()
		return
	}
	if c.prov != nil {
		span.SetName("proxy " + c.prov.Name())
		span.SetAttributes(attrProvider.String(c.prov.Name()))
	}
	span.SetAttributes(c.attributes()...)
	if c.key != nil {
		span.SetAttributes(attrKeyID.String(c.key.ID), telemetry.AttrTenantID.String(c.key.TenantID), attrEnv.String(c.key.Env))
	}
	if !c.firstByte.IsZero() {
		span.SetAttributes(attrTTFB.Float64(ms(c.firstByte.Sub(c.start))))
	}
	telemetry.EndServer(span, c.status)
}

// attributes are what the call's spans share: model, stream, outcome and
// token counts as known.
func (c *call) attributes() []attribute.KeyValue {
	a := make([]attribute.KeyValue, 0, 7)
	model := c.model
	if model == "" {
		model = c.usage.Model
	}
	if model != "" {
		a = append(a, attrModel.String(model))
	}
	outcome := c.outcome
	if c.status >= 400 && outcome == usage.OutcomeOK {
		outcome = usage.OutcomeError // as the usage event says (record)
	}
	a = append(a, attrStream.Bool(c.stream), attrOutcome.String(outcome))
	if c.errText != "" {
		a = append(a, attrErrorCode.String(c.errText))
	}
	if c.usage.Known {
		a = append(a, attrInputTokens.Int64(c.usage.PromptTokens), attrOutputTokens.Int64(c.usage.CompletionTokens),
			attrTotalTokens.Int64(c.usage.TotalTokens))
	}
	return a
}

// startUpstream starts the span of the upstream call (a child of the
// request's span, when that is sampled), ended by endUpstream once the
// answer is relayed.
func (p *Proxy) startUpstream(ctx context.Context, c *call, up *http.Request) {
	if !c.tr.span.IsRecording() {
		return
	}
	_, c.tr.up = p.tracer.Start(ctx, "upstream "+c.prov.Name(), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attrProvider.String(c.prov.Name()), telemetry.AttrMethod.String(up.Method), telemetry.AttrServer.String(up.URL.Hostname())))
}

func (p *Proxy) endUpstream(c *call) {
	up := c.tr.up
	if up == nil {
		return
	}
	up.SetAttributes(c.attributes()...)
	status := c.status
	if c.headersAt.IsZero() {
		status = 0 // no answer: the server span says what the client got
	}
	if status != 0 {
		up.SetAttributes(telemetry.AttrStatusCode.Int(status))
	}
	if status >= 500 || status == 0 {
		up.SetStatus(codes.Error, c.errText)
	}
	up.End()
}
