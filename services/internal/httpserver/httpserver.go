// Package httpserver configures the HTTP servers of both services: the
// limits every public server applies to hostile clients (header and body
// deadlines: NewServer, Limits), the internal listener's handler (metrics,
// pprof: InternalHandler), and echo for the REST APIs: request ids, panic
// recovery, access logs, the 1 MiB body limit, JSON binding rules,
// pagination, the error envelope of the REST API, and the health endpoint
// with its dependency probes (HealthHandler, PostgresCheck, NATSCheck).
package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/logging"
	"trueportai/services/internal/pgdb"
)

// RequestIDHeader carries the request id on every response.
const RequestIDHeader = "X-Request-Id"

// New returns an echo instance with the shared middleware and error handler;
// outer middleware (e.g. metrics) runs outside error rendering and sees the
// final status. Bodies over MaxBodyBytes are refused (413) before routing
// and authentication.
func New(log *slog.Logger, outer ...echo.MiddlewareFunc) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = ErrorHandler(log)
	e.Use(requestID())
	e.Use(outer...)
	e.Use(recoverer(log), accessLog(log), limitBody(MaxBodyBytes))
	return e
}

// NewRequestID returns a random 128-bit hex id.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestID returns the request id of c.
func RequestID(c echo.Context) string {
	return c.Response().Header().Get(RequestIDHeader)
}

func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := NewRequestID()
			c.Response().Header().Set(RequestIDHeader, id)
			ctx := logging.WithAttrs(c.Request().Context(), slog.String("request_id", id))
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

func recoverer(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					log.ErrorContext(c.Request().Context(), "panic in handler", "panic", fmt.Sprint(r))
					err = apperr.New(apperr.Internal, "internal_error", "internal error")
				}
			}()
			return next(c)
		}
	}
}

func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req := c.Request()
			log.InfoContext(req.Context(), "http request",
				"method", req.Method, "path", c.Path(), "status", c.Response().Status,
				"duration_ms", float64(time.Since(start).Microseconds())/1000, "bytes_out", c.Response().Size)
			return nil
		}
	}
}

// Envelope is the REST error body.
type Envelope struct {
	Error EnvelopeError `json:"error"`
}

// EnvelopeError is the content of Envelope.
type EnvelopeError struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	RequestID string         `json:"request_id"`
	Details   map[string]any `json:"details,omitempty"`
}

// ErrorHandler writes every error as the spec's envelope; unknown errors are
// logged and answered as a generic 500.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		ae := toAppError(err)
		switch {
		case ae.Kind == apperr.Internal:
			log.ErrorContext(c.Request().Context(), "internal error", "err", err)
		case ae.Code == codeDatabaseUnavailable:
			log.WarnContext(c.Request().Context(), "database unavailable", "err", err)
		}
		if ae.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
		body := Envelope{Error: EnvelopeError{Code: ae.Code, Message: ae.Message, RequestID: RequestID(c), Details: ae.Details}}
		status := ae.Kind.HTTPStatus()
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}

func toAppError(err error) *apperr.Error {
	if ae, ok := apperr.As(err); ok {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		switch he.Code {
		case http.StatusNotFound:
			return apperr.New(apperr.NotFound, "not_found", "no such route")
		case http.StatusMethodNotAllowed:
			return apperr.New(apperr.MethodNotAllowed, "method_not_allowed", "method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return apperr.New(apperr.TooLarge, "body_too_large", "request body too large")
		case http.StatusUnsupportedMediaType:
			return apperr.New(apperr.UnsupportedMedia, "unsupported_media_type", "content type must be application/json")
		case http.StatusUnauthorized:
			return apperr.New(apperr.Unauthenticated, "unauthorized", "missing or invalid token")
		case http.StatusBadRequest:
			return apperr.New(apperr.Invalid, "bad_request", msg)
		case http.StatusServiceUnavailable:
			return apperr.New(apperr.Unavailable, "unavailable", msg)
		}
	}
	if pgdb.IsUnavailable(err) {
		ae := apperr.Wrap(apperr.Unavailable, codeDatabaseUnavailable, "the database is unavailable, retry later", err)
		ae.RetryAfter = databaseRetryAfter
		return ae
	}
	return apperr.Wrap(apperr.Internal, "internal_error", "internal error", err)
}

// A database that cannot be reached is a 503 with Retry-After, not a 500:
// the request was not at fault and the same request may pass in a moment.
const (
	codeDatabaseUnavailable = "database_unavailable"
	databaseRetryAfter      = 5 // seconds
)

// BindJSON decodes a JSON request body into v, enforcing the content type and
// a size limit, and turning decode failures into 4xx errors naming the field.
func BindJSON(c echo.Context, v any, limit int64) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return apperr.New(apperr.UnsupportedMedia, "unsupported_media_type", "content type must be application/json")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return BodyError(err, limit)
	}
	if int64(len(body)) > limit {
		return TooLarge(limit)
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return apperr.InvalidField(te.Field, fmt.Sprintf("%s must be a %s", te.Field, te.Type.String()))
		}
		return apperr.New(apperr.Invalid, "invalid_json", "request body is not valid JSON")
	}
	return nil
}

// Page is a parsed limit/offset pair.
type Page struct {
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// ParsePage reads limit (default 50, clamped to 200) and offset (>= 0).
func ParsePage(c echo.Context) (Page, error) {
	p := Page{Limit: 50}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return p, apperr.InvalidField("limit", "limit must be a non-negative integer")
		}
		p.Limit = int(min(n, 200))
		if p.Limit == 0 {
			p.Limit = 50
		}
	}
	if s := c.QueryParam("offset"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return p, apperr.InvalidField("offset", "offset must be a non-negative integer")
		}
		p.Offset = int(n)
	}
	return p, nil
}

// List is the overview's pagination envelope.
type List[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// NewList builds an envelope, never with a null items array.
func NewList[T any](items []T, total int, p Page) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, Total: total, Limit: p.Limit, Offset: p.Offset}
}

// Serve listens on srv.Addr and runs srv until ctx ends (see ServeListener).
func Serve(ctx context.Context, srv *http.Server, grace time.Duration, log *slog.Logger) error {
	lis, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", srv.Addr, err)
	}
	return ServeListener(ctx, srv, lis, grace, log)
}

// ServeListener runs srv on lis until ctx ends, then shuts it down within
// grace (in-flight requests finish; after grace connections are closed).
func ServeListener(ctx context.Context, srv *http.Server, lis net.Listener, grace time.Duration, log *slog.Logger) error {
	return ServeListenerStop(ctx, srv, lis, Stop{Grace: grace}, log)
}

// Stop says how ServeListenerStop ends a server once its context ends.
type Stop struct {
	// DrainDelay keeps the server serving (and accepting) this long after
	// the context ended: load balancers and endpoints that saw readiness
	// turn false stop sending new requests meanwhile.
	DrainDelay time.Duration
	// Grace bounds the wait for requests in flight once the listener is
	// closed.
	Grace time.Duration
	// End, when set, is called once Grace is over with requests still in
	// flight, to have them finish at once (the gateway ends its streams
	// with a final error event and records their usage); they get EndWait
	// more. Then, or at the end of Grace without End, the connections are
	// closed.
	End     func()
	EndWait time.Duration
}

// ServeListenerStop runs srv on lis until ctx ends, then stops it as stop
// says: serving for the drain delay, then draining in-flight requests for
// the grace period, then ending those left, then closing connections. The
// whole stop is bounded by DrainDelay + Grace + EndWait, whatever clients
// do.
func ServeListenerStop(ctx context.Context, srv *http.Server, lis net.Listener, stop Stop, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	if stop.DrainDelay > 0 {
		log.Info("http server draining", "addr", lis.Addr().String(), "drain_delay", stop.DrainDelay.String())
		t := time.NewTimer(stop.DrainDelay)
		select {
		case err := <-errc:
			t.Stop()
			return fmt.Errorf("http server %s: %w", lis.Addr(), err)
		case <-t.C:
		}
	}
	log.Info("http server shutting down", "addr", lis.Addr().String())
	sctx, cancel := context.WithTimeout(context.Background(), stop.Grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil && stop.End != nil {
		log.Warn("http server grace period over with requests in flight: ending them", "addr", lis.Addr().String(), "grace", stop.Grace.String())
		stop.End()
		ectx, cancel := context.WithTimeout(context.Background(), stop.EndWait)
		defer cancel()
		// A second Shutdown waits for the connections to go idle again
		// (the listener is closed already).
		err = srv.Shutdown(ectx)
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
