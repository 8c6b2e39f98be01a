// Command gateway serves the TruePortAI AI gateway: the provider proxy routes,
// the management API, and the usage ingester.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"trueportai/services/gateway/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
