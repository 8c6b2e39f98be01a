package httpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
)

// TestErrorHandlerDatabaseUnavailable: a handler whose database cannot be
// reached answers 503 with Retry-After (it answered 500 before); other
// unknown errors stay 500 without it.
func TestErrorHandlerDatabaseUnavailable(t *testing.T) {
	e := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.GET("/down", func(echo.Context) error {
		return fmt.Errorf("list keys: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"})
	})
	e.GET("/refused", func(echo.Context) error {
		return fmt.Errorf("list keys: %w", &pgconn.ConnectError{})
	})
	e.GET("/bug", func(echo.Context) error { return errors.New("nil map") })
	for _, tc := range []struct {
		path       string
		status     int
		code       string
		retryAfter string
	}{
		{"/down", http.StatusServiceUnavailable, "database_unavailable", "5"},
		{"/refused", http.StatusServiceUnavailable, "database_unavailable", "5"},
		{"/bug", http.StatusInternalServerError, "internal_error", ""},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
		var body Envelope
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.Error.Code != tc.code || rec.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%s: %d %q Retry-After %q, want %d %q %q", tc.path, rec.Code, body.Error.Code, rec.Header().Get("Retry-After"), tc.status, tc.code, tc.retryAfter)
		}
	}
}
