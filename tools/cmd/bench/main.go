// Command bench runs the benchmarks of make bench and writes their figures to
// stdout and into docs/benchmarks.md, between each benchmark's begin/end
// markers:
//
//	bench go         Go micro-benchmarks of the hot path (bench-go block)
//	bench proxy      load test: gateway vs a bare Go reverse proxy vs the fake
//	                 provider, interleaved in rounds (bench block)
//	bench analytics  ingestion rates and the analytics SQL on generated data
//	                 (bench-analytics block)
//	bench all        go, proxy, then analytics (BENCH_ANALYTICS=0 skips it)
//	bench overload   the gateway under 3x its sustainable closed-loop rate
//	                 (bench-overload block; not part of all: make overload)
//
// Run it from the repository root after make build: proxy starts the real
// binaries from bin/ on loopback ports. Every knob is an environment
// variable (BENCH_*, INGEST_BENCH_*), listed in docs/benchmarks.md and in
// the files of each subcommand.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	// This module is outside go.work (it is built with GOWORK=off); the go
	// commands it runs build the services, which need the workspace.
	os.Unsetenv("GOWORK")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		say("bench", "error: %v", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: bench go|proxy|analytics|overload|all ...")
	}
	if _, err := os.Stat("go.work"); err != nil {
		return fmt.Errorf("run bench from the repository root (no go.work here)")
	}
	var cmds []string
	for _, a := range args {
		if a == "all" {
			cmds = append(cmds, "go", "proxy")
			if os.Getenv("BENCH_ANALYTICS") != "0" {
				cmds = append(cmds, "analytics")
			}
			continue
		}
		cmds = append(cmds, a)
	}
	for _, c := range cmds {
		var err error
		switch c {
		case "go":
			err = benchGo(ctx)
		case "proxy":
			err = benchProxy(ctx)
		case "analytics":
			err = benchAnalytics(ctx)
		case "overload":
			err = benchOverload(ctx)
		default:
			return fmt.Errorf("unknown subcommand %q (go, proxy, analytics, overload, all)", c)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// say prints a progress line on stderr.
func say(who, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[bench %s %s] %s\n", who, time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
