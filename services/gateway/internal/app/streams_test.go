package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"trueportai/services/internal/dbtest"
)

// TestStartRefusedStreamFails: a NATS server that refuses the usage stream
// (here three replicas on a single server) stops the start with the reason
// and the setting to change. Before, the gateway served on and spooled
// every event without end.
func TestStartRefusedStreamFails(t *testing.T) {
	for _, role := range []string{"all", "ingester"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			url := os.Getenv("NATS_URL")
			if url == "" {
				url = "nats://127.0.0.1:4222"
			}
			prefix := fmt.Sprintf("apprefused%d", time.Now().UnixNano())
			t.Cleanup(func() {
				deleteStream(url, strings.ToUpper(prefix)+"_USAGE")
				deleteStream(url, strings.ToUpper(prefix)+"_USAGE_DLQ")
			})
			env := map[string]string{
				"APP_ENV": "dev", "GATEWAY_ROLE": role, "LOG_FORMAT": "text",
				"GATEWAY_DATABASE_URL": dbtest.NewURL(t, "app_refused"), "NATS_URL": url,
				"NATS_PREFIX": prefix, "GATEWAY_SPOOL_DIR": t.TempDir(),
				"USAGE_STREAM_MAX_BYTES": "8388608", "USAGE_DLQ_MAX_BYTES": "1048576", "USAGE_STREAM_REPLICAS": "3",
				"PLATFORM_GRPC_ADDR": "127.0.0.1:1",
			}
			httpLis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err = RunWithListeners(ctx, func(k string) string { return env[k] }, io.Discard, Listeners{HTTP: httpLis, GRPC: grpcLis})
			if err == nil || !strings.Contains(err.Error(), "USAGE_STREAM_REPLICAS") || !strings.Contains(err.Error(), "replicas") {
				t.Fatalf("RunWithListeners = %v, want the refusal naming USAGE_STREAM_REPLICAS", err)
			}
		})
	}
}
