package usage

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// proxyEvent is the event of a typical proxied chat completion (what the
// proxy's record builds: tokens, cost, no bodies, no violations).
func proxyEvent() *Event {
	pt, ct, tt, ca := int64(12), int64(9), int64(21), int64(0)
	ttfb, usd := 1.234, 0.0000072
	return &Event{RequestID: "0123456789abcdef0123456789abcdef", CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11",
		Env: "production", KeyID: "3c7d0c7e-2f7b-4f52-9d43-1f1f4c1b9e55", KeyName: "bench", Provider: "openai", Model: "gpt-4o-mini",
		Path: "/chat/completions", StatusCode: 200, LatencyMS: 1.52, TTFBMS: &ttfb, PromptTokens: &pt, CompletionTokens: &ct,
		TotalTokens: &tt, CachedTokens: &ca, CostUSD: &usd, Outcome: OutcomeOK}
}

// BenchmarkPublish is what Publish costs the request goroutine that calls
// it (the proxy's record), with the event taken off the queue as the sender
// would: the figure behind "Usage journal" in
// docs/benchmarks.md.
func BenchmarkPublish(b *testing.B) {
	pub := benchPublisher(b)
	ev := proxyEvent()
	b.ReportAllocs()
	for b.Loop() {
		pub.Publish(ev)
		// The sender's receive, in this goroutine: no goroutine handoff
		// (a parked receiver woken per event would measure the scheduler).
		<-pub.queue
	}
}

// benchPublisher is a publisher without NATS (Publish does not use the
// connection; a live one made valgrind meet RDTSCP in contended runtime
// locks).
func benchPublisher(b *testing.B) *Publisher {
	return &Publisher{log: slog.New(slog.NewTextHandler(io.Discard, nil)), queue: make(chan *Event, 16384)}
}
