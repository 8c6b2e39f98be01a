package journal

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the journal's Prometheus series (j may be nil: the
// journal is off or could not be opened, and trueport_usage_journal_enabled
// says so): trueport_usage_journal_{appended,recovered,errors}_total,
// trueport_usage_journal_skipped_total{reason}, trueport_usage_journal_segments
// and trueport_usage_journal_enabled.
func Collectors(j *Journal) []prometheus.Collector {
	stat := func(f func(Stats) int64) func() float64 {
		return func() float64 {
			if j == nil {
				return 0
			}
			return float64(f(j.Stats()))
		}
	}
	out := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trueport_usage_journal_enabled",
			Help: "1 when usage events are journaled (they survive a kill of the process), 0 when the journal is off or could not be opened."},
			func() float64 {
				if j == nil {
					return 0
				}
				return 1
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trueport_usage_journal_appended_total",
			Help: "Usage events written to the journal."}, stat(func(s Stats) int64 { return s.Appended })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trueport_usage_journal_recovered_total",
			Help: "Journaled usage events of a previous process replayed at start."}, stat(func(s Stats) int64 { return s.Recovered })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trueport_usage_journal_errors_total",
			Help: "Journal segments that could not be created (full disk, unwritable directory), read or removed."},
			stat(func(s Stats) int64 { return s.Errors })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trueport_usage_journal_segments",
			Help: "Journal segment files of this process on disk."}, stat(func(s Stats) int64 { return s.Segments })),
	}
	for _, r := range reasons {
		out = append(out, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "trueport_usage_journal_skipped_total",
			Help: "Usage events not journaled (they would not survive a kill of the process), by reason.", ConstLabels: prometheus.Labels{"reason": r}},
			stat(func(s Stats) int64 { return s.Skipped[r] })))
	}
	return out
}
