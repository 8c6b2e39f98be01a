package changefeed

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"trueportai/services/internal/events"
)

// runNATS starts an embedded NATS server on a port of its choosing.
func runNATS(t *testing.T) *nats.Conn {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS not ready")
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// recorder keeps the calls the handlers received, in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
	got   chan struct{}
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) handlers() Handlers {
	return Handlers{
		TenantChanged: func(id string) { r.add("tenant " + id) },
		TokensRevoked: func(user, tenant string) { r.add("tokens " + user + "/" + tenant) },
		KeyChanged: func(ctx context.Context, id string) error {
			if _, ok := ctx.Deadline(); ok {
				r.add("key " + id) // the reload is bounded
			} else {
				r.add("key " + id + " without a deadline")
			}
			return errors.New("logged, nothing else")
		},
		PoliciesChanged:     func(_ context.Context, id string) error { r.add("policies " + id); return nil },
		GlobalConfigChanged: func() { r.add("global") },
	}
}

func TestEventsReachTheirHandlers(t *testing.T) {
	nc := runNATS(t)
	subj := events.Subjects{Prefix: "test"}
	rec := &recorder{got: make(chan struct{}, 16)}
	feed, err := Subscribe(nc, subj, rec.handlers(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()

	publish := func(subject string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if err := nc.Publish(subject, b); err != nil {
			t.Fatal(err)
		}
	}
	// Ignored: not JSON, or without the id the event is about.
	for _, s := range []string{subj.TenantChanged(), subj.TokensRevoked(), subj.PoliciesChanged(), subj.KeysChanged()} {
		if err := nc.Publish(s, []byte("not json")); err != nil {
			t.Fatal(err)
		}
	}
	publish(subj.TenantChanged(), events.TenantChangedEvent{Reason: "plan"})
	publish(subj.PoliciesChanged(), events.PoliciesChangedEvent{})
	publish(subj.KeysChanged(), events.KeysChangedEvent{TenantID: "t1"})
	// Handled.
	publish(subj.TenantChanged(), events.TenantChangedEvent{TenantID: "t1", Reason: "plan"})
	publish(subj.TokensRevoked(), events.TokensRevokedEvent{UserID: "u1", Reason: "password_changed"})
	publish(subj.PoliciesChanged(), events.PoliciesChangedEvent{TenantID: "t2"})
	publish(subj.KeysChanged(), events.KeysChangedEvent{KeyID: "k1", TenantID: "t1"})
	publish(subj.GlobalConfigChanged(), events.GlobalConfigChangedEvent{Key: "pricing.overrides"})

	want := map[string]bool{"tenant t1": true, "tokens u1/": true, "policies t2": true, "key k1": true, "global": true}
	for range want {
		select {
		case <-rec.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("handlers saw %v, want %v", rec.calls, want)
		}
	}
	// Each subject's messages are handled in order, and the ignored ones
	// were published first: they have all been handled by now.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != len(want) {
		t.Fatalf("handlers saw %v, want exactly %v", rec.calls, want)
	}
	for _, c := range rec.calls {
		if !want[c] {
			t.Fatalf("unexpected call %q (all: %v)", c, rec.calls)
		}
	}
}

func TestNilHandlersAreNotSubscribed(t *testing.T) {
	nc := runNATS(t)
	got := make(chan string, 1)
	feed, err := Subscribe(nc, events.Subjects{Prefix: "test"}, Handlers{TenantChanged: func(id string) { got <- id }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(feed.subs); n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
	feed.Close()
	if err := nc.Publish("test.platform.tenant.changed", []byte(`{"tenant_id":"t1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-got:
		t.Fatalf("a closed feed handled tenant %s", id)
	default:
	}
}
