package usage

import (
	"context"
	"io"
	"log/slog"
	"runtime/metrics"
	"sync"
	"syscall"
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
	p := &Publisher{log: slog.New(slog.NewTextHandler(io.Discard, nil)), queue: make(chan queued, queueEvents)}
	p.limit.Store(int64(MessageLimit(nil)))
	return p
}

// BenchmarkPublishPaced is the whole publisher at a steady rate, as a
// gateway at 1 000 requests/s runs it: one event every millisecond from
// the benchmark's goroutine (the request goroutines), the sender batching
// them, JetStream's publishes and acks releasing the journal. It reports
// the process's CPU time per event (user+system, getrusage: it includes
// NATS client goroutines, not the server), the scheduler's goroutine
// wake-ups per event (runtime/metrics /sched/latencies:seconds, which
// samples one in 8 of them: ×8) and the events per JetStream message.
// "pacing only" is the same loop without Publish: subtract it. Needs NATS
// (127.0.0.1:4222, NATS_URL).
func BenchmarkPublishPaced(b *testing.B) {
	for _, publish := range []bool{true, false} {
		name := "publish"
		if !publish {
			name = "pacing only"
		}
		b.Run(name, func(b *testing.B) { benchPublishPaced(b, publish) })
	}
}

func benchPublishPaced(b *testing.B, publish bool) {
	nc, _, _, subject := testStream(b, "paced")
	spool, err := OpenSpool(b.TempDir(), 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := NewPublisher(nc, subject, spool, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	j, err := journal.Open(journal.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { j.Run(ctx) })
	wg.Go(func() { pub.Run(ctx) })
	defer func() { cancel(); wg.Wait(); j.Close() }()
	pub.SetJournal(j)

	waitPublished := func(n int64) {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			if p, s, l := pub.Stats(); p+s+l >= n {
				if s+l > 0 {
					b.Fatalf("%d events spooled, %d lost", s, l)
				}
				return
			}
			if time.Now().After(deadline) {
				b.Fatal("events not acknowledged within 30 s")
			}
		}
	}
	ev := proxyEvent()
	pub.Publish(ev)
	waitPublished(1)
	msgs0 := nc.Stats().OutMsgs
	cpu0, wakes0 := processCPU(), schedEvents()
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	n := 0
	for b.Loop() {
		<-tick.C
		e := *ev
		if publish {
			pub.Publish(&e)
		}
		n++
	}
	if publish {
		waitPublished(int64(n + 1))
	}
	b.StopTimer()
	cpu, wakes := processCPU()-cpu0, schedEvents()-wakes0
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
	b.ReportMetric(8*float64(wakes)/float64(n), "wakeups/event")
	if msgs := nc.Stats().OutMsgs - msgs0; msgs > 0 {
		b.ReportMetric(float64(n)/float64(msgs), "events/message")
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// schedEvents is the count of /sched/latencies:seconds: the goroutines
// the scheduler ran after they became runnable (one in 8 sampled).
func schedEvents() uint64 {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	var n uint64
	for _, c := range s[0].Value.Float64Histogram().Counts {
		n += c
	}
	return n
}
