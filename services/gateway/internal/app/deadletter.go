package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/events"
)

// Command runs a command-line subcommand of the gateway binary instead of
// the server: "deadletter list [--limit N]" prints the dead letters of the
// usage pipeline (one JSON object a line, oldest first: seq, stage, error,
// request and tenant ids, and the event); "deadletter replay [--limit N]"
// sends their events back to the usage stream and deletes them (an event
// refused again comes back as a new dead letter; lines that are not whole
// events are kept). "revoke-instance ID" / "revoke-key KID" revoke an
// instance or a key of the gateway's service identity (its database, then
// a NATS event). The environment is the server's (NATS_URL, NATS_PREFIX,
// GATEWAY_DATABASE_URL).
//
// "rollups rebuild --tenant ID --from T --to T" recomputes a tenant's
// rollups from its logs; "rollups order" orders the closed rollup periods
// not ordered yet (rollupsCommand).
func Command(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "rollups" {
		return rollupsCommand(ctx, args, getenv, stdout)
	}
	if ok, err := revokeCommand(ctx, args, getenv, stdout); ok {
		return err
	}
	usageText := "usage: gateway deadletter list|replay [--limit N] | revoke-instance INSTANCE_ID | revoke-key KEY_ID\n       " + rollupsUsage[len("usage: "):]
	if len(args) < 2 || args[0] != "deadletter" || (args[1] != "list" && args[1] != "replay") {
		return errors.New(usageText)
	}
	fs := flag.NewFlagSet("deadletter "+args[1], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	limit := fs.Int("limit", 0, "at most this many dead letters (0: all)")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 || *limit < 0 {
		return errors.New(usageText)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("gateway-deadletter"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("nats connect %s: %w", cfg.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	streams := usageStreams(cfg, events.Subjects{Prefix: cfg.NATSPrefix})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	enc := json.NewEncoder(stdout)
	if args[1] == "list" {
		n := 0
		err := usage.ReadDeadLetters(ctx, js, streams, *limit, func(d usage.StoredDeadLetter) error {
			n++
			return enc.Encode(d)
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%d dead letters listed\n", n)
		return err
	}
	replayed, kept := 0, 0
	err = usage.ReplayDeadLetters(ctx, js, streams, *limit, func(d usage.StoredDeadLetter, ok bool) {
		if ok {
			replayed++
			fmt.Fprintf(stdout, "replayed %d request_id=%s\n", d.Seq, d.RequestID)
			return
		}
		kept++
		fmt.Fprintf(stdout, "kept %d (not a whole event: truncated=%v): %s\n", d.Seq, d.Truncated, d.Error)
	})
	fmt.Fprintf(stdout, "%d dead letters replayed, %d kept\n", replayed, kept)
	return err
}
