package usage

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the publisher's Prometheus series:
// trueport_usage_events_{published,spooled,lost,sanitised,dead_lettered}_total.
func (p *Publisher) Collectors() []prometheus.Collector {
	series := []struct {
		name, help string
		v          func(Counters) int64
	}{
		{"published", "Usage events acknowledged by JetStream (spool replays included).", func(c Counters) int64 { return c.Published }},
		{"spooled", "Usage events written to the disk spool (NATS unreachable, slow or refusing).", func(c Counters) int64 { return c.Spooled }},
		{"lost", "Usage events neither published nor spooled (spool full, disk full).", func(c Counters) int64 { return c.Lost }},
		{"sanitised", "Usage events whose fields were cleaned (invalid UTF-8, NUL) or cut to be storable.", func(c Counters) int64 { return c.Sanitised }},
		{"dead_lettered", "Spooled lines that could not be published as events, sent to the dead-letter stream.", func(c Counters) int64 { return c.DeadLettered }},
	}
	out := make([]prometheus.Collector, 0, len(series))
	for _, s := range series {
		out = append(out, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "trueport_usage_events_" + s.name + "_total", Help: s.help,
		}, func() float64 { return float64(s.v(p.Counters())) }))
	}
	return out
}
