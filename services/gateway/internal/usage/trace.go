package usage

import (
	"github.com/nats-io/nats.go"

	"trueportai/services/internal/telemetry"
)

// maxTraceparents bounds the trace contexts one usage message carries: with
// the Nats-Msg-Id they fit in the room MessageLimit keeps for headers
// (about 70 bytes each). A batch holding more sampled events than that
// (a rare burst: the edge samples at most some hundred requests a second)
// carries the first ones; the others' traces end at the request.
const maxTraceparents = 8

// appendTraceparent adds ev's trace context (tracing on, sampled request)
// to a message's list.
func appendTraceparent(tps []string, tp string) []string {
	if tp == "" || len(tps) >= maxTraceparents {
		return tps
	}
	return append(tps, tp)
}

// setTraceparents writes the message's trace contexts as its traceparent
// header, one value per sampled event, in the events' order: a consumer
// reading only the first value (a W3C propagator) gets the first event's.
func setTraceparents(h nats.Header, tps []string) {
	if len(tps) > 0 {
		h[telemetry.TraceparentHeader] = tps
	}
}
