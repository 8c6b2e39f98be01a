package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/events"
)

// TestDeadLetterCommand: "gateway deadletter list" prints every dead
// letter; "replay" sends the whole events back to the usage stream and
// deletes their dead letters, and keeps the one that is not an event.
func TestDeadLetterCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = natsgo.DefaultURL
	}
	env := map[string]string{"APP_ENV": "dev", "NATS_URL": url, "NATS_PREFIX": fmt.Sprintf("dlqtest%d", time.Now().UnixNano()),
		"USAGE_STREAM_MAX_BYTES": "8388608", "USAGE_DLQ_MAX_BYTES": "8388608"}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	streams := usageStreams(cfg, events.Subjects{Prefix: cfg.NATSPrefix})
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close) // after the streams' deletion below (cleanups run last first)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := usage.EnsureStreams(ctx, js, streams); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { usage.DeleteStreams(context.Background(), js, streams) })

	for i, line := range []string{`{"request_id":"r1","tenant_id":"not-a-uuid"}`, `{"request_id":"r2","tenant_id":"x"}`, "not json"} {
		stage := usage.StageInsert
		if i == 2 {
			stage = usage.StageDecode
		}
		dl := usage.NewDeadLetter(stage, []byte(line), errors.New("refused"), uint64(i+1), 1<<20)
		if err := usage.PublishDeadLetter(ctx, js, streams.DeadLetterSubject, dl, usage.DeadLetterMsgID(stage, []byte(line), uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}

	var out bytes.Buffer
	if err := Command(ctx, []string{"deadletter", "list"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || lines[3] != "3 dead letters listed" {
		t.Fatalf("list printed:\n%s", out.String())
	}
	var first usage.StoredDeadLetter
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.RequestID != "r1" || first.Stage != usage.StageInsert || first.Seq != 1 {
		t.Fatalf("first dead letter %+v (%v)", first, err)
	}
	out.Reset()
	if err := Command(ctx, []string{"deadletter", "list", "--limit", "1"}, getenv, &out); err != nil || !strings.HasSuffix(out.String(), "1 dead letters listed\n") {
		t.Fatalf("list --limit 1: %v\n%s", err, out.String())
	}

	out.Reset()
	if err := Command(ctx, []string{"deadletter", "replay"}, getenv, &out); err != nil {
		t.Fatalf("replay: %v\n%s", err, out.String())
	}
	if !strings.HasSuffix(out.String(), "2 dead letters replayed, 1 kept\n") {
		t.Fatalf("replay printed:\n%s", out.String())
	}
	usageInfo, err := js.Stream(ctx, streams.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := usageInfo.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("usage stream holds %d messages after the replay, want 2", n)
	}
	dlqInfo, err := js.Stream(ctx, streams.DeadLetterName)
	if err != nil {
		t.Fatal(err)
	}
	if n := dlqInfo.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("dead-letter stream holds %d messages after the replay, want the 1 kept", n)
	}
	for _, args := range [][]string{{"deadletter"}, {"deadletter", "purge"}, {"deadletter", "list", "--limit", "x"}, {"serve"}} {
		if err := Command(ctx, args, getenv, &out); err == nil || !strings.Contains(err.Error(), "usage: gateway deadletter") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
