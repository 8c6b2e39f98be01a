package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// connect dials the local NATS (NATS_URL or the default) and returns a
// subject prefix no other test uses.
func connect(t *testing.T) (*nats.Conn, Subjects) {
	t.Helper()
	url := os.Getenv("NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	var b [6]byte
	_, _ = rand.Read(b[:])
	return nc, Subjects{Prefix: "test_" + hex.EncodeToString(b[:])}
}

func TestPublisherSendsEachEvent(t *testing.T) {
	t.Parallel()
	nc, subj := connect(t)
	var logs bytes.Buffer
	pub := NewPublisher(nc, subj, slog.New(slog.NewTextHandler(&logs, nil)))

	// One subscription on the whole prefix: every event is seen, in order.
	msgs := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(subj.Prefix+".>", msgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	tests := []struct {
		publish func()
		subject string
		want    string
	}{
		{func() { pub.TenantChanged(ctx, TenantChangedEvent{TenantID: "t1", Reason: "plan"}) },
			subj.TenantChanged(), `{"tenant_id":"t1","reason":"plan"}`},
		{func() { pub.TokensRevoked(ctx, TokensRevokedEvent{UserID: "u1", Reason: "password_changed"}) },
			subj.TokensRevoked(), `{"user_id":"u1","reason":"password_changed"}`},
		{func() { pub.GlobalConfigChanged(ctx, GlobalConfigChangedEvent{Key: "pricing.overrides"}) },
			subj.GlobalConfigChanged(), `{"key":"pricing.overrides"}`},
		{func() { pub.KeyChanged(ctx, KeysChangedEvent{KeyID: "k1", TenantID: "t1"}) },
			subj.KeysChanged(), `{"key_id":"k1","tenant_id":"t1"}`},
		{func() { pub.PoliciesChanged(ctx, PoliciesChangedEvent{TenantID: "t1"}) },
			subj.PoliciesChanged(), `{"tenant_id":"t1"}`},
	}
	for _, tt := range tests {
		tt.publish()
	}
	for _, tt := range tests {
		select {
		case m := <-msgs:
			if m.Subject != tt.subject || string(m.Data) != tt.want {
				t.Errorf("got %s %s, want %s %s", m.Subject, m.Data, tt.subject, tt.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no message on %s", tt.subject)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("successful publishes logged: %s", logs.String())
	}
}

// TestPublisherPrefixesAreIsolated: a publisher reaches only subscribers of
// its own prefix (parallel tests and services share one NATS server).
func TestPublisherPrefixesAreIsolated(t *testing.T) {
	t.Parallel()
	nc, mine := connect(t)
	_, other := connect(t)
	var mu sync.Mutex
	var got []string
	sub, err := nc.Subscribe(other.TenantChanged(), func(m *nats.Msg) {
		mu.Lock()
		got = append(got, m.Subject)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	ownMsgs, err := nc.SubscribeSync(mine.TenantChanged())
	if err != nil {
		t.Fatal(err)
	}
	NewPublisher(nc, mine, slog.New(slog.DiscardHandler)).TenantChanged(context.Background(), TenantChangedEvent{TenantID: "t"})
	if _, err := ownMsgs.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("own subscriber: %v", err)
	}
	// The own message arrived; anything sent to the other prefix would have
	// been delivered on the same connection before a flush round trip ends.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Errorf("another prefix received %v", got)
	}
}

func TestPublisherLogsFailures(t *testing.T) {
	t.Parallel()
	nc, subj := connect(t)
	nc.Close()
	var logs bytes.Buffer
	pub := NewPublisher(nc, subj, slog.New(slog.NewJSONHandler(&logs, nil)))
	pub.KeyChanged(context.Background(), KeysChangedEvent{KeyID: "k1", TenantID: "t1"})

	var rec struct {
		Level, Msg, Subject, Err string
	}
	if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if rec.Level != "ERROR" || rec.Msg != "publish change event failed" || rec.Subject != subj.KeysChanged() ||
		!strings.Contains(rec.Err, "closed") {
		t.Errorf("log = %+v", rec)
	}
}
