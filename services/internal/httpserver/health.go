package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
)

// Check is one dependency probe of a health endpoint.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
	// Down is what the answer says while the probe fails ("unreachable"
	// when empty). The probe's error is logged, never answered: driver
	// errors carry host names, user names and SQL states.
	Down string
}

// HealthHandler answers 200 {"status":"ok","checks":{…}} when every check
// passes and 503 naming the failing ones otherwise, each with its fixed
// Down text; the probes' errors go to log.
func HealthHandler(log *slog.Logger, checks ...Check) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		res := make(map[string]string, len(checks))
		status, code := "ok", http.StatusOK
		for _, ch := range checks {
			if err := ch.Probe(ctx); err != nil {
				log.WarnContext(ctx, "health check failed", "check", ch.Name, "err", err)
				res[ch.Name] = ch.down()
				status, code = "unavailable", http.StatusServiceUnavailable
				continue
			}
			res[ch.Name] = "ok"
		}
		return c.JSON(code, map[string]any{"status": status, "checks": res})
	}
}

func (ch Check) down() string {
	if ch.Down == "" {
		return "unreachable"
	}
	return ch.Down
}

// Pinger is a database PostgresCheck can probe (*pgxpool.Pool, or a store
// wrapping one).
type Pinger interface {
	Ping(ctx context.Context) error
}

// PostgresCheck is the "postgres" probe: a ping of db ("unreachable" while
// it fails).
func PostgresCheck(db Pinger) Check {
	return Check{Name: "postgres", Probe: db.Ping, Down: "unreachable"}
}

// NATSCheck is the "nats" probe: it fails ("not connected"; the error, logged,
// names the connection's status) while nc is not connected (connecting,
// reconnecting, draining, closed).
func NATSCheck(nc *nats.Conn) Check {
	return Check{Name: "nats", Down: "not connected", Probe: func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return errors.New(s.String())
		}
		return nil
	}}
}
