package usage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEnsureStreamsNamesTheProblem: a server without room for the
// stream's MaxBytes, or a single server asked for three replicas, is a
// StreamRefusedError that names the setting to change (before, the gateway
// logged a warning, served on, and spooled every event for good).
func TestEnsureStreamsNamesTheProblem(t *testing.T) {
	t.Parallel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		JetStreamMaxStore: 32 << 20, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		streams Streams
		want    string
	}{
		{"no room", NewStreams("T_USAGE", "t.usage.events", 1<<30, 1<<20, 1), "USAGE_STREAM_MAX_BYTES"},
		{"no room for the dead letters", NewStreams("T_USAGE", "t.usage.events", 8<<20, 1<<30, 1), "USAGE_DLQ_MAX_BYTES"},
		{"replicas", NewStreams("T_USAGE", "t.usage.events", 8<<20, 1<<20, 3), "USAGE_STREAM_REPLICAS"},
	} {
		err := EnsureStreams(ctx, js, tc.streams)
		var refused *StreamRefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a StreamRefusedError naming %s", tc.name, err, tc.want)
		}
		DeleteStreams(ctx, js, tc.streams)
	}
	if err := EnsureStreams(ctx, js, NewStreams("T_USAGE", "t.usage.events", 8<<20, 1<<20, 1)); err != nil {
		t.Errorf("streams that fit: %v", err)
	}
}
