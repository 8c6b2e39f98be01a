package app

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/internal/dbtest"
)

// deleteStream removes the usage stream a test created on the shared NATS.
func deleteStream(url, name string) {
	nc, err := natsgo.Connect(url, natsgo.Timeout(2*time.Second))
	if err != nil {
		return
	}
	defer nc.Close()
	if js, err := jetstream.New(nc); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	}
}

// syncBuffer is the process log, written by the gateway while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunWithListeners: each role serves health on the HTTP listener it
// is handed (bound here on port 0, the configured address unused), /metrics
// and pprof on the internal listener only (404 on the public one), and
// stops cleanly with its context.
func TestRunWithListeners(t *testing.T) {
	for _, role := range []string{"all", "ingester"} {
		t.Run(role, func(t *testing.T) {
			t.Parallel()
			httpLis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			internalLis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			nats := os.Getenv("NATS_URL")
			if nats == "" {
				nats = "nats://127.0.0.1:4222"
			}
			prefix := fmt.Sprintf("apptest%d", time.Now().UnixNano())
			t.Cleanup(func() {
				deleteStream(nats, strings.ToUpper(prefix)+"_USAGE")
				deleteStream(nats, strings.ToUpper(prefix)+"_USAGE_DLQ")
			})
			env := map[string]string{
				"APP_ENV": "dev", "GATEWAY_ROLE": role, "LOG_FORMAT": "text",
				"GATEWAY_DATABASE_URL": dbtest.NewURL(t, "app_"+role), "NATS_URL": nats,
				"NATS_PREFIX": prefix, "GATEWAY_SPOOL_DIR": t.TempDir(),
				"USAGE_STREAM_MAX_BYTES": "8388608", "USAGE_DLQ_MAX_BYTES": "1048576",
				// Never bound: the listeners above are used.
				"GATEWAY_HTTP_ADDR": "192.0.2.1:1", "GATEWAY_GRPC_ADDR": "192.0.2.1:2", "GATEWAY_INTERNAL_ADDR": "192.0.2.1:3",
				"PLATFORM_GRPC_ADDR": "127.0.0.1:1",
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &syncBuffer{}
			done := make(chan error, 1)
			go func() {
				done <- RunWithListeners(ctx, func(k string) string { return env[k] }, logs, Listeners{HTTP: httpLis, GRPC: grpcLis, Internal: internalLis})
			}()
			url := "http://" + httpLis.Addr().String() + "/trueportai-services/health"
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := http.Get(url)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				select {
				case err := <-done:
					t.Fatalf("gateway returned %v before serving\n%s", err, logs)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("health on the handed listener: %v\n%s", err, logs)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for _, path := range []string{"/metrics", "/debug/pprof/"} {
				for base, want := range map[string]int{"http://" + httpLis.Addr().String(): 404, "http://" + internalLis.Addr().String(): 200} {
					resp, err := http.Get(base + path)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != want {
						t.Errorf("GET %s%s: %d, want %d", base, path, resp.StatusCode, want)
					}
				}
			}
			// Every role serves the health routes, the local readiness too.
			for _, path := range []string{"/trueportai-services/health/live", "/trueportai-services/health/ready", "/trueportai-services/health/ready/local"} {
				resp, err := http.Get("http://" + httpLis.Addr().String() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d, want 200", path, resp.StatusCode)
				}
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("RunWithListeners = %v\n%s", err, logs)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("gateway did not stop\n%s", logs)
			}
			if _, err := net.DialTimeout("tcp", httpLis.Addr().String(), time.Second); err == nil {
				t.Error("the handed HTTP listener is still open after return")
			}
		})
	}
}
