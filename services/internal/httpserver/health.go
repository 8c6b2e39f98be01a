package httpserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
)

// Check is one dependency probe of a health endpoint.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// HealthHandler answers 200 {"status":"ok","checks":{…}} when every check
// passes and 503 naming the failing ones otherwise.
func HealthHandler(checks ...Check) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		res := make(map[string]string, len(checks))
		status, code := "ok", http.StatusOK
		for _, ch := range checks {
			if err := ch.Probe(ctx); err != nil {
				res[ch.Name] = "error: " + err.Error()
				status, code = "unavailable", http.StatusServiceUnavailable
				continue
			}
			res[ch.Name] = "ok"
		}
		return c.JSON(code, map[string]any{"status": status, "checks": res})
	}
}

// Pinger is a database PostgresCheck can probe (*pgxpool.Pool, or a store
// wrapping one).
type Pinger interface {
	Ping(ctx context.Context) error
}

// PostgresCheck is the "postgres" probe: a ping of db.
func PostgresCheck(db Pinger) Check {
	return Check{Name: "postgres", Probe: db.Ping}
}

// NATSCheck is the "nats" probe: it fails, naming the connection's status,
// while nc is not connected (connecting, reconnecting, draining, closed).
func NATSCheck(nc *nats.Conn) Check {
	return Check{Name: "nats", Probe: func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return errors.New(s.String())
		}
		return nil
	}}
}
