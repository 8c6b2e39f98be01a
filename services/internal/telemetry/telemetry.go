// Package telemetry is the OpenTelemetry tracing of both services: it builds
// the tracer provider from the standard OTEL_* environment variables (off
// unless an exporter is asked for), applies the sampling rule of the
// services' edge (a client's traceparent is honoured, its sampled flag is
// only a request, see Extract), flushes on shutdown, and hands out the
// instrumentation of the transports both services share: the echo
// middleware of the REST APIs (Middleware), the gRPC stats handlers
// (GRPCServerOptions, GRPCDialOptions) and the W3C traceparent of NATS
// message headers (Traceparent, ParseTraceparent).
//
// Nothing here is global: a *Telemetry is built once by each service's
// composition root and passed to what it instruments. A nil *Telemetry is
// tracing off; every method works on it and costs nothing.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Defaults of the edge budgets (per process).
const (
	// DefaultMaxPerSecond bounds the traces a process starts per second
	// (its own roots and the client traces it picks by the ratio).
	DefaultMaxPerSecond = 100
	// DefaultClientSampledPerSecond bounds the traces a process records per
	// second only because a client's traceparent asked (sampled flag).
	DefaultClientSampledPerSecond = 10
)

// Config builds a Telemetry (New). FromEnv fills it from the environment.
type Config struct {
	// Service is the resource's service.name (OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override it in FromEnv).
	Service string
	// Exporter receives finished spans in batches (OTLP in production).
	Exporter sdktrace.SpanExporter
	// SpanProcessor, when set, receives spans synchronously instead
	// (tests: tracetest.SpanRecorder).
	SpanProcessor sdktrace.SpanProcessor
	// Resource describes the process; nil: service.name only.
	Resource *resource.Resource
	// Ratio is the share of new traces recorded (0…1).
	Ratio float64
	// MaxPerSecond and ClientSampledPerSecond are the edge budgets (see
	// Extract); 0 means the defaults, a negative value none at all.
	MaxPerSecond           float64
	ClientSampledPerSecond float64
}

// Telemetry is the tracing of one process (nil: off).
type Telemetry struct {
	sdk  *sdktrace.TracerProvider
	prop propagation.TraceContext
	edge *edge
}

// New builds an enabled Telemetry from cfg.
func New(cfg Config) *Telemetry {
	e := newEdge(cfg.Ratio, budget(cfg.MaxPerSecond, DefaultMaxPerSecond), budget(cfg.ClientSampledPerSecond, DefaultClientSampledPerSecond))
	res := cfg.Resource
	if res == nil {
		res = resource.NewSchemaless(attribute.String("service.name", cfg.Service))
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sampler{e})}
	if cfg.Exporter != nil {
		opts = append(opts, sdktrace.WithBatcher(cfg.Exporter))
	}
	if cfg.SpanProcessor != nil {
		opts = append(opts, sdktrace.WithSpanProcessor(cfg.SpanProcessor))
	}
	return &Telemetry{sdk: sdktrace.NewTracerProvider(opts...), edge: e}
}

func budget(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// FromEnv builds the Telemetry of service from the standard OTEL_*
// variables read through getenv; it returns nil (tracing off) unless
// OTEL_TRACES_EXPORTER is otlp, or is unset while an OTLP endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set.
// OTEL_SDK_DISABLED=true turns it off whatever else says. The exporter's
// own settings (endpoint, headers, TLS, timeout, compression) are read by
// the OTLP exporter from the process environment, as the specification
// says; the protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf by default, or grpc).
// Sampling: OTEL_TRACES_SAMPLER (always_on, always_off, traceidratio and
// their parentbased_ forms; parentbased_always_on by default) and
// OTEL_TRACES_SAMPLER_ARG give the ratio, TRACES_MAX_PER_SECOND and
// TRACES_CLIENT_SAMPLED_PER_SECOND the edge budgets (see Extract).
func FromEnv(ctx context.Context, getenv func(string) string, service string) (*Telemetry, error) {
	on, err := enabled(getenv)
	if err != nil || !on {
		return nil, err
	}
	cfg := Config{Service: service}
	if cfg.Ratio, err = ratio(getenv); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		name string
		dst  *float64
	}{{"TRACES_MAX_PER_SECOND", &cfg.MaxPerSecond}, {"TRACES_CLIENT_SAMPLED_PER_SECOND", &cfg.ClientSampledPerSecond}} {
		if s := strings.TrimSpace(getenv(b.name)); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%s must be a non-negative number, got %q", b.name, s)
			}
			*b.dst = v
			if v == 0 {
				*b.dst = -1 // explicitly none
			}
		}
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	cfg.Resource = res
	proto := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if proto == "" {
		proto = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	switch proto {
	case "", "http/protobuf":
		cfg.Exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		cfg.Exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q is not supported (http/protobuf or grpc)", proto)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	return New(cfg), nil
}

// enabled says whether the environment asks for traces.
func enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER %q is not supported (otlp or none)", exp)
	}
}

// ratio reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
func ratio(getenv func(string) string) (float64, error) {
	switch s := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")); s {
	case "", "always_on", "parentbased_always_on":
		return 1, nil
	case "always_off", "parentbased_always_off":
		return 0, nil
	case "traceidratio", "parentbased_traceidratio":
		arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG must be a ratio in [0, 1], got %q", arg)
		}
		return r, nil
	default:
		return 0, fmt.Errorf("OTEL_TRACES_SAMPLER %q is not supported (always_on, always_off, traceidratio, parentbased_*)", s)
	}
}

// Enabled reports whether tracing is on.
func (t *Telemetry) Enabled() bool { return t != nil && t.sdk != nil }

// TracerProvider is the provider spans are made by (a no-op one when off).
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if !t.Enabled() {
		return noop.NewTracerProvider()
	}
	return t.sdk
}

// Tracer returns the named tracer (a no-op one when off).
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.TracerProvider().Tracer(name) }

// Propagator is the W3C trace-context propagator (no baggage: nothing a
// client sends besides its trace context travels through the services).
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// Announce logs that tracing is on, with its sampling (nothing when off).
func (t *Telemetry) Announce(log *slog.Logger) {
	if t.Enabled() {
		log.Info("tracing on", "ratio", t.edge.ratio, "max_per_second", t.edge.picked.rate,
			"client_sampled_per_second", t.edge.clients.rate)
	}
}

// Close is Shutdown bounded by timeout, its failure logged: the deferred
// last step of a service (an unreachable collector must not hold the exit).
func (t *Telemetry) Close(timeout time.Duration, log *slog.Logger) {
	if !t.Enabled() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("traces not flushed at shutdown", "err", err)
	}
}

// Shutdown exports the spans still queued and stops the exporter (bounded
// by ctx). Call it once the servers have drained.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}
