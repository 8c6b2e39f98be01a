package usage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// TestPublisherTraceparentHeader: a usage message's traceparent header has
// one value per sampled event it carries, in the events' order, at most
// maxTraceparents; events without a trace context add none; the body is
// the events alone (the context is never stored).
func TestPublisherTraceparentHeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, js, stream, subject := testStream(t, "traceparent")
	spool, err := OpenSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(nc, subject, spool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tp := func(i int) string { return fmt.Sprintf("00-4bf92f3577b34da6a3ce929d0e0e47%02x-00f067aa0ba902b7-01", i) }
	var want []string
	// Queued before Run: one message of 12 events, 10 of them traced.
	const n = 12
	for i := range n {
		ev := &Event{RequestID: fmt.Sprintf("req-%d", i), CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11",
			Env: "production", Provider: "openai", Path: "/chat/completions", StatusCode: 200, Outcome: OutcomeOK}
		if i%6 != 5 {
			ev.Traceparent = tp(i)
			if len(want) < maxTraceparents {
				want = append(want, tp(i))
			}
		}
		pub.Publish(ev)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); pub.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for p, _, _ := pub.Stats(); p < n; p, _, _ = pub.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("published %d of %d", p, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Values("traceparent"); !slices.Equal(got, want) {
		t.Errorf("traceparent values %q, want %q", got, want)
	}
	if eventCount(msg.Data) != n {
		t.Fatalf("the message holds %d events, want %d", eventCount(msg.Data), n)
	}
	if bytes.Contains(msg.Data, []byte("00-4bf92f")) {
		t.Error("the trace context is in the stored body")
	}
}
