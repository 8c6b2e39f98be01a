package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
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

// Drain is a process's shutdown latch: not draining until Begin, draining
// for good after. The zero value is ready to use.
type Drain struct{ draining atomic.Bool }

// Begin marks the process as shutting down.
func (d *Drain) Begin() { d.draining.Store(true) }

// Draining reports whether Begin was called.
func (d *Drain) Draining() bool { return d.draining.Load() }

var errDraining = errors.New("draining")

// Check is the "shutdown" probe: it fails ("draining") once Begin was
// called. It reads one atomic: no I/O.
func (d *Drain) Check() Check {
	return Check{Name: "shutdown", Down: "draining", Probe: func(context.Context) error {
		if d.Draining() {
			return errDraining
		}
		return nil
	}}
}

// Probes are the handlers behind a service's health routes.
type Probes struct {
	// Health checks the dependencies (Postgres, NATS) and the process's
	// own state: /health and /health/ready. It fails on every replica at
	// once when a shared dependency is down, so no readiness probe of a
	// pod that a Service routes to may use it.
	Health echo.HandlerFunc
	// Local checks only what the process decides alone (draining, and the
	// local probes it was given), never calling a dependency:
	// /health/ready/local, the readiness route of served pods.
	Local echo.HandlerFunc
}

// NewProbes builds a service's health handlers: deps probe its
// dependencies, local its own state (no I/O: they run on every readiness
// probe), drain is its shutdown latch. Health runs all of them, Local the
// local ones and the latch.
func NewProbes(log *slog.Logger, drain *Drain, deps []Check, local ...Check) Probes {
	own := append(slices.Clone(local), drain.Check())
	return Probes{
		Health: HealthHandler(log, append(slices.Clone(deps), own...)...),
		Local:  HealthHandler(log, own...),
	}
}

// Live answers the liveness route: 200 {"status":"ok"} while the process
// serves HTTP at all.
func Live(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
