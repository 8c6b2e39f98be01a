package usage

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"trueportai/services/gateway/internal/journal"
	"trueportai/services/internal/money"
)

// proxyEvent is the event of a typical proxied chat completion (what the
// proxy's record builds: tokens, cost, no bodies, no violations).
func proxyEvent() *Event {
	pt, ct, tt, ca := int64(12), int64(9), int64(21), int64(0)
	ttfb, usd := 1.234, money.USD(7)
	return &Event{RequestID: "0123456789abcdef0123456789abcdef", CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11",
		Env: "production", KeyID: "3c7d0c7e-2f7b-4f52-9d43-1f1f4c1b9e55", KeyName: "bench", Provider: "openai", Model: "gpt-4o-mini",
		Path: "/chat/completions", StatusCode: 200, LatencyMS: 1.52, TTFBMS: &ttfb, PromptTokens: &pt, CompletionTokens: &ct,
		TotalTokens: &tt, CachedTokens: &ca, CostUSD: &usd, Outcome: OutcomeOK}
}

// BenchmarkPublish is what Publish costs the request goroutine that calls
// it (the proxy's record): encoding the event, journaling it (journal=on),
// queueing it; the event is taken off the queue as the sender would. The
// figures are in docs/benchmarks.md ("Usage journal").
func BenchmarkPublish(b *testing.B) {
	for _, withJournal := range []bool{false, true} {
		name := "journal=off"
		if withJournal {
			name = "journal=on"
		}
		b.Run(name, func(b *testing.B) {
			pub := benchPublisher(b)
			if withJournal {
				j, err := journal.Open(journal.Options{Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); j.Run(ctx) }()
				defer func() { cancel(); <-done; j.Close() }()
				pub.SetJournal(j)
			}
			ev := proxyEvent()
			b.ReportAllocs()
			for b.Loop() {
				pub.Publish(ev)
				// The sender's receive and the ack's release, in this
				// goroutine: no goroutine handoff (a parked receiver woken
				// per event would measure the scheduler).
				q := <-pub.queue
				q.ref.Release()
			}
		})
	}
}

// benchPublisher is a publisher without NATS (Publish does not use the
// connection; a live one made valgrind meet RDTSCP in contended runtime
// locks).
func benchPublisher(testing.TB) *Publisher {
	p := &Publisher{log: slog.New(slog.NewTextHandler(io.Discard, nil)), queue: make(chan queued, 16384)}
	p.limit.Store(int64(MessageLimit(nil)))
	return p
}
