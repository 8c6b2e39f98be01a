// Command platform-backend serves the TruePortAI platform API (users,
// organisations, billing, configs, admin) over REST and gRPC.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"trueportai/services/platform-backend/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "platform-backend:", err)
		os.Exit(1)
	}
}
