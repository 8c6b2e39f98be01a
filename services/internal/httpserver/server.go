package httpserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
)

// Limits bound what one client can make a server wait for. Anyone can sign
// up, so every client is assumed hostile: a client that sends its headers or
// its body a byte at a time must not hold a connection and a goroutine for
// longer than these.
type Limits struct {
	// ReadHeaderTimeout bounds reading the request line and headers
	// (slowloris). The services use it for a gRPC connection's handshake too.
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds reading a request body, from the moment the
	// handler starts to the body's end. It is a read deadline on the
	// connection, lifted as soon as the body has been read: it never bounds
	// writing the response, so a long stream after a quick body is never cut.
	BodyReadTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
}

// DefaultLimits are the services' defaults (READ_HEADER_TIMEOUT,
// BODY_READ_TIMEOUT).
var DefaultLimits = Limits{ReadHeaderTimeout: 10 * time.Second, BodyReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}

// NewServer returns a server for h with lim applied: ReadHeaderTimeout and
// IdleTimeout on the server, the body deadline around h. It sets no
// ReadTimeout (a connection read deadline that outlived the body would
// cancel a streaming handler's context when it expired) and no
// WriteTimeout (streams last as long as the upstream sends); callers with
// short answers only may set WriteTimeout themselves.
func NewServer(h http.Handler, lim Limits) *http.Server {
	return &http.Server{
		Handler:           WithBodyDeadline(h, lim.BodyReadTimeout),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
	}
}

// WithBodyDeadline gives every request with a body d to send it: the
// connection's read deadline is set when h starts and cleared once the body
// has been read to its end. A body still incomplete at the deadline fails
// with a *BodyTimeoutError, and the connection is closed after the answer
// (what remains on the wire is never parsed as another request). When h
// answers without reading the body, net/http discards the rest before
// writing the answer, under the same deadline. Requests without a body
// (GET, Content-Length: 0) get no deadline.
func WithBodyDeadline(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			h.ServeHTTP(w, r) // a writer without deadlines (tests' recorders)
			return
		}
		// A shallow copy: net/http keeps inspecting its own request's
		// body after the handler returns to decide on connection reuse.
		r2 := r.WithContext(r.Context())
		r2.Body = &deadlineBody{body: r.Body, rc: rc, w: w, limit: d}
		h.ServeHTTP(w, r2)
	})
}

// deadlineBody lifts the read deadline at the body's end and reports a
// deadline hit as a *BodyTimeoutError.
type deadlineBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	w     http.ResponseWriter
	limit time.Duration
	done  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == nil || b.done {
		return n, err
	}
	b.done = true
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
		return n, err
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Usually the answer is not written yet: make sure the rest of
		// the trickle is never read as a request.
		b.w.Header().Set("Connection", "close")
		return n, &BodyTimeoutError{Limit: b.limit, err: err}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// BodyTimeoutError is a request body that did not arrive within Limit.
type BodyTimeoutError struct {
	Limit time.Duration
	err   error
}

func (e *BodyTimeoutError) Error() string {
	return "request body not received within " + e.Limit.String()
}

func (e *BodyTimeoutError) Unwrap() error { return e.err }

// MaxBodyBytes bounds every REST (management) request body: 1 MiB.
const MaxBodyBytes = 1 << 20

// TooLarge is the 413 answered for a REST body over limit bytes: the
// envelope names the limit (details.limit_bytes).
func TooLarge(limit int64) *apperr.Error {
	return &apperr.Error{Kind: apperr.TooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("request body exceeds the limit of %s (%d bytes)", sizeText(limit), limit),
		Details: map[string]any{"limit_bytes": limit}}
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// BodyError turns an error from reading a REST request body into the
// client's error: 413 past a limit of limit bytes, 408 past the body
// deadline, else 400.
func BodyError(err error, limit int64) *apperr.Error {
	var tooBig *http.MaxBytesError
	var slow *BodyTimeoutError
	switch {
	case errors.As(err, &tooBig):
		return TooLarge(tooBig.Limit)
	case errors.As(err, &slow):
		return &apperr.Error{Kind: apperr.RequestTimeout, Code: "request_timeout", Message: slow.Error(),
			Details: map[string]any{"timeout_seconds": slow.Limit.Seconds()}}
	}
	return apperr.New(apperr.Invalid, "invalid_body", "could not read request body")
}

// limitBody refuses REST bodies over limit bytes before any handler or
// authentication runs: a declared Content-Length over it is answered 413 at
// once; any other body is cut at limit (http.MaxBytesReader), which
// BindJSON answers 413 too.
func limitBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return TooLarge(limit)
			}
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			}
			return next(c)
		}
	}
}
