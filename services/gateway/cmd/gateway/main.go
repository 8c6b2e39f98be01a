// Command gateway serves the TruePortAI AI gateway: the provider proxy routes,
// the management API, and the usage ingester. "gateway deadletter
// list|replay [--limit N]" lists or replays the usage pipeline's dead letters;
// "gateway rollups rebuild --tenant ID --from T --to T" recomputes a
// tenant's usage rollups from its logs; "gateway rollups order" orders the
// closed rollup periods the retention job has not ordered yet.
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
	var err error
	if len(os.Args) > 1 {
		err = app.Command(ctx, os.Args[1:], os.Getenv, os.Stdout)
	} else {
		err = app.Run(ctx, os.Getenv, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
