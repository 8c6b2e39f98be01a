package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// TestObserveExemplar: a sampled span's trace id becomes the observation's
// exemplar; without one (tracing off, or not sampled) there is none.
func TestObserveExemplar(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Buckets: []float64{1}})
	reg.MustRegister(h)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	Observe(h, 0.5, trace.SpanContext{})
	Observe(h, 0.5, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})) // not sampled
	Observe(h, 0.5, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	hist := mfs[0].GetMetric()[0].GetHistogram()
	if hist.GetSampleCount() != 3 {
		t.Fatalf("count %d", hist.GetSampleCount())
	}
	ex := hist.GetBucket()[0].GetExemplar()
	if ex == nil || len(ex.GetLabel()) != 1 || ex.GetLabel()[0].GetValue() != tid.String() {
		t.Errorf("exemplar %v, want trace_id %s", ex, tid)
	}
}

// TestSchedulerLatencies: the registry exports the scheduler's latency
// histogram besides the Go collector's defaults (go_goroutines).
func TestSchedulerLatencies(t *testing.T) {
	mfs, err := New("test").Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
		if mf.GetName() == "go_sched_latencies_seconds" && len(mf.GetMetric()[0].GetHistogram().GetBucket()) == 0 {
			t.Error("go_sched_latencies_seconds has no buckets")
		}
	}
	for _, name := range []string{"go_sched_latencies_seconds", "go_goroutines"} {
		if !found[name] {
			t.Errorf("%s not exported", name)
		}
	}
}
