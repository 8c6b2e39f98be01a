package proxy

import (
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsSeriesCache: requests land in the series of their own label
// values whichever were seen before, from many goroutines at once, and the
// latency histogram counts every request of its provider.
func TestMetricsSeriesCache(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	labels := []struct {
		provider string
		status   int
		outcome  string
	}{{"openai", 200, "ok"}, {"openai", 429, "error"}, {"anthropic", 200, "ok"}, {"openai", 200, "flagged"}, {"unknown", 400, "error"}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				l := labels[(g+i)%len(labels)]
				m.observe(l.provider, l.status, l.outcome, 0.5, 12, nil)
			}
		})
	}
	wg.Wait()
	perLabels := 8 * 100 / len(labels)
	for _, l := range labels {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(l.provider, strconv.Itoa(l.status), l.outcome)); got != float64(perLabels) {
			t.Errorf("%v: %v requests, want %d", l, got, perLabels)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != len(labels) {
		t.Errorf("%d request series, want %d", n, len(labels))
	}
	if n := testutil.CollectAndCount(m.latency); n != 3 {
		t.Errorf("%d latency series, want 3 (one per provider)", n)
	}
}
