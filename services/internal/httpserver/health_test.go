package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"trueportai/services/internal/dbtest"
)

type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

func TestHealthHandler(t *testing.T) {
	t.Parallel()
	ok := Check{Name: "up", Probe: func(context.Context) error { return nil }}
	down := Check{Name: "down", Probe: func(context.Context) error { return errors.New("refused") }}
	tests := []struct {
		name   string
		checks []Check
		code   int
		want   map[string]any
	}{
		{"all pass", []Check{ok}, 200, map[string]any{"status": "ok", "checks": map[string]any{"up": "ok"}}},
		{"one fails", []Check{ok, down}, 503, map[string]any{"status": "unavailable",
			"checks": map[string]any{"up": "ok", "down": "unreachable"}}},
		{"no checks", nil, 200, map[string]any{"status": "ok", "checks": map[string]any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(slog.New(slog.DiscardHandler))
			e.GET("/health", HealthHandler(slog.New(slog.DiscardHandler), tt.checks...))
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tt.code || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %d %v, want %d %v", rec.Code, got, tt.code, tt.want)
			}
		})
	}
}

func TestHealthHandlerBoundsProbes(t *testing.T) {
	t.Parallel()
	slow := Check{Name: "slow", Probe: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	e := New(slog.New(slog.DiscardHandler))
	e.GET("/health", HealthHandler(slog.New(slog.DiscardHandler), slow))
	start := time.Now()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	if rec.Code != 503 || time.Since(start) > 10*time.Second {
		t.Errorf("a hung probe: %d after %v", rec.Code, time.Since(start))
	}
}

func TestPostgresCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c := PostgresCheck(pool)
	if c.Name != "postgres" {
		t.Errorf("name %q", c.Name)
	}
	if err := c.Probe(ctx); err != nil {
		t.Fatalf("local Postgres: %v", err)
	}
	pool.Close()
	if err := c.Probe(ctx); err == nil {
		t.Error("a closed pool passes")
	}
	failing := PostgresCheck(pingFunc(func(context.Context) error { return errors.New("no route") }))
	if err := failing.Probe(ctx); err == nil || err.Error() != "no route" {
		t.Errorf("probe error = %v", err)
	}
}

func TestNATSCheck(t *testing.T) {
	t.Parallel()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", url, err)
	}
	c := NATSCheck(nc)
	if c.Name != "nats" {
		t.Errorf("name %q", c.Name)
	}
	if err := c.Probe(context.Background()); err != nil {
		t.Fatalf("connected: %v", err)
	}
	nc.Close()
	if err := c.Probe(context.Background()); err == nil || err.Error() != "CLOSED" {
		t.Errorf("closed connection: %v, want CLOSED", err)
	}

	// A connection still trying to reach a server that is not there.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	retrying, err := nats.Connect("nats://"+addr, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer retrying.Close()
	if err := NATSCheck(retrying).Probe(context.Background()); err == nil {
		t.Error("a connection that never connected passes")
	}
}

// TestHealthHidesProbeErrors: a failing probe's error (driver text naming
// hosts, users, secrets) goes to the log; the answer names the dependency
// and a fixed state only.
func TestHealthHidesProbeErrors(t *testing.T) {
	t.Parallel()
	secret := `failed to connect to user=svc_admin host=10.7.3.9: password authentication failed (password=hunter2-S3CRET)`
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	e := New(log)
	e.GET("/health", HealthHandler(log,
		PostgresCheck(pingFunc(func(context.Context) error { return errors.New(secret) })),
		Check{Name: "nats", Down: "not connected", Probe: func(context.Context) error { return errors.New("nats: token=tok-SECRET-42 rejected") }},
		Check{Name: "custom", Probe: func(context.Context) error { return errors.New("custom detail SECRET") }},
	))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", rec.Code)
	}
	var got struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"postgres": "unreachable", "nats": "not connected", "custom": "unreachable"}
	if got.Status != "unavailable" || !reflect.DeepEqual(got.Checks, want) {
		t.Errorf("answer %s, want checks %v", rec.Body, want)
	}
	for _, leak := range []string{"SECRET", "hunter2", "10.7.3.9", "svc_admin", "token="} {
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("answer leaks %q: %s", leak, rec.Body)
		}
	}
	if !strings.Contains(logs.String(), "hunter2-S3CRET") || !strings.Contains(logs.String(), "check=postgres") {
		t.Errorf("the probe error is not logged: %s", logs.String())
	}
}

// TestProbes: the local readiness answers from the process's own state
// only. A dependency outage fails Health on every replica but leaves Local
// at 200 (the Service keeps its endpoints); draining fails both; Local never
// calls a dependency's probe.
func TestProbes(t *testing.T) {
	t.Parallel()
	var depCalls, localCalls atomic.Int32
	depUp := atomic.Bool{}
	depUp.Store(true)
	dep := Check{Name: "postgres", Probe: func(context.Context) error {
		depCalls.Add(1)
		if depUp.Load() {
			return nil
		}
		return errors.New("connection refused")
	}}
	warm := atomic.Bool{}
	local := Check{Name: "cache", Down: "cold", Probe: func(context.Context) error {
		localCalls.Add(1)
		if warm.Load() {
			return nil
		}
		return errors.New("not loaded")
	}}
	var drain Drain
	p := NewProbes(slog.New(slog.DiscardHandler), &drain, []Check{dep}, local)
	e := New(slog.New(slog.DiscardHandler))
	e.GET("/health", p.Health)
	e.GET("/health/live", Live)
	e.GET("/health/ready/local", p.Local)
	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: body %q: %v", path, rec.Body, err)
		}
		return rec.Code, body
	}
	steps := []struct {
		name              string
		up, warm, drained bool
		health, local     int
		localChecks       map[string]any
	}{
		{"cold cache", true, false, false, 503, 503, map[string]any{"cache": "cold", "shutdown": "ok"}},
		{"serving", true, true, false, 200, 200, map[string]any{"cache": "ok", "shutdown": "ok"}},
		{"dependency down", false, true, false, 503, 200, map[string]any{"cache": "ok", "shutdown": "ok"}},
		{"draining", true, true, true, 503, 503, map[string]any{"cache": "ok", "shutdown": "draining"}},
	}
	for _, s := range steps {
		depUp.Store(s.up)
		warm.Store(s.warm)
		if s.drained {
			drain.Begin()
		}
		if code, _ := get("/health"); code != s.health {
			t.Errorf("%s: /health %d, want %d", s.name, code, s.health)
		}
		before := depCalls.Load()
		code, body := get("/health/ready/local")
		if code != s.local || !reflect.DeepEqual(body["checks"], s.localChecks) {
			t.Errorf("%s: /health/ready/local %d %v, want %d %v", s.name, code, body, s.local, s.localChecks)
		}
		if depCalls.Load() != before {
			t.Errorf("%s: the local readiness probed a dependency", s.name)
		}
		if code, body := get("/health/live"); code != 200 || body["status"] != "ok" {
			t.Errorf("%s: /health/live %d %v", s.name, code, body)
		}
	}
	if localCalls.Load() == 0 {
		t.Error("the local probe never ran")
	}
	if !drain.Draining() {
		t.Error("Begin did not latch")
	}
}
