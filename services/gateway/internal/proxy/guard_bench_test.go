package proxy

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/usage"
)

// firstWriteWriter is a discardWriter that notes when the first bytes of
// the answer were written (the client's first chunk).
type firstWriteWriter struct {
	*discardWriter
	first time.Time
}

func (w *firstWriteWriter) Write(p []byte) (int, error) {
	if w.first.IsZero() {
		w.first = time.Now()
	}
	return w.discardWriter.Write(p)
}

// BenchmarkStreamFirstChunk is the added time to first chunk of a stream
// (BenchmarkProxyStream's 5-chunk OpenAI stream) when one response rule
// applies (a secrets block rule: the guard parses every event and holds
// text back) against none. ns/first-chunk-p50 and -p99 are measured from
// ServeHTTP's start to the first write to the client; text itself is held
// back by the rule's window (policy.StreamHold) on top of that.
func BenchmarkStreamFirstChunk(b *testing.B) {
	oneRule, err := policy.Compile([]policy.Rule{{ID: "r", Name: "no keys in answers", Type: policy.TypeSecrets,
		Action: policy.ActionBlock, Direction: policy.DirectionResponse, Enabled: true, Config: []byte(`{}`)}})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  *policy.Set
	}{{"no response rule", nil}, {"one response rule", oneRule}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newBenchHarness(b, benchStreamBody)
			h.p.opts.Policies = benchPolicies{tc.set}
			w := &firstWriteWriter{discardWriter: h.w}
			serve := func() time.Duration {
				h.w.reset()
				w.first = time.Time{}
				h.rb.Reset(h.body)
				start := time.Now()
				h.p.ServeHTTP(w, h.req)
				return w.first.Sub(start)
			}
			serve()
			if h.w.status != http.StatusOK || h.pub.last.Outcome != usage.OutcomeOK || h.pub.last.TotalTokens == nil {
				b.Fatalf("status %d, usage event %+v", h.w.status, h.pub.last)
			}
			var firsts []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				firsts = append(firsts, serve())
			}
			b.StopTimer()
			slices.Sort(firsts)
			b.ReportMetric(float64(firsts[len(firsts)/2].Nanoseconds()), "ns/first-chunk-p50")
			b.ReportMetric(float64(firsts[len(firsts)*99/100].Nanoseconds()), "ns/first-chunk-p99")
		})
	}
}
