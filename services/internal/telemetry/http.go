package telemetry

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Span attribute keys of the services' spans. Bodies, prompts, headers
// and secrets are never attributes.
const (
	AttrMethod     = attribute.Key("http.request.method")
	AttrRoute      = attribute.Key("http.route")
	AttrStatusCode = attribute.Key("http.response.status_code")
	AttrServer     = attribute.Key("server.address")
	AttrRequestID  = attribute.Key("trueport.request_id")
	AttrTenantID   = attribute.Key("trueport.tenant_id")
)

// StartServer starts the server span of a request received on a public
// port: the client's traceparent is honoured as Extract says, and the
// response headers get the span's own traceparent (so a client learns the
// trace id of its request, sampled or not). The returned context carries
// the span (and with it trace_id in log records). Off: ctx and a no-op span.
func (t *Telemetry) StartServer(ctx context.Context, tracer trace.Tracer, name string, req, resp http.Header, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !t.Enabled() {
		return ctx, trace.SpanFromContext(ctx)
	}
	ctx, span := tracer.Start(t.Extract(ctx, req), name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	t.prop.Inject(ctx, propagation.HeaderCarrier(resp))
	return ctx, span
}

// EndServer records the answer's status on a server span and ends it
// (5xx: the span's status is an error).
func EndServer(span trace.Span, status int) {
	span.SetAttributes(AttrStatusCode.Int(status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// Middleware traces the REST routes of an echo server: one server span per
// request, named by method and route pattern, with the request id and the
// final status. Install it among httpserver.New's outer middleware (after
// the request id, outside error rendering). Health probes are not traced.
// Off: the middleware passes requests through untouched.
func (t *Telemetry) Middleware() echo.MiddlewareFunc {
	if !t.Enabled() {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	tracer := t.Tracer("trueportai/httpserver")
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			if strings.HasSuffix(route, "/health") || strings.Contains(route, "/health/") {
				return next(c)
			}
			req := c.Request()
			ctx, span := t.StartServer(req.Context(), tracer, req.Method+" "+route, req.Header, c.Response().Header(),
				AttrMethod.String(req.Method), AttrRoute.String(route), AttrRequestID.String(c.Response().Header().Get("X-Request-Id")))
			c.SetRequest(req.WithContext(ctx))
			err := next(c)
			status := c.Response().Status
			if err != nil && !c.Response().Committed {
				status = http.StatusInternalServerError
				if he, ok := err.(*echo.HTTPError); ok {
					status = he.Code
				}
			}
			EndServer(span, status)
			return err
		}
	}
}
