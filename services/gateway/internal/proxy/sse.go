package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/usage"
)

// streamWatchLimit bounds the raw stream data kept for response-rule
// flagging when the provider's stream text cannot be read.
const streamWatchLimit = 1 << 20

// relayStream copies a streamed response one event at a time, in the
// provider's framing: each complete event is metered, written and flushed
// before the next is read, so a slow client throttles the upstream read
// (bounded buffering). The upstream is cancelled when it stays silent for the
// idle timeout or when the client goes away. Between two events the ticker
// (Run) may write a keep-alive; when the shutdown ends the call (EndCalls)
// the stream ends with the provider's error event.
func (p *Proxy) relayStream(ctx context.Context, cancel context.CancelFunc, w http.ResponseWriter, framing provider.Framing, body io.Reader, c *call) {
	var keepAlive []byte
	if ka, ok := c.prov.(provider.StreamKeepAlive); ok && p.opts.KeepAliveInterval > 0 {
		keepAlive = ka.KeepAlive(framing)
	}
	out := &c.open.out
	c.open.start(w, keepAlive)
	// Whichever way the relay returns, no keep-alive may be written once
	// the handler is done with w.
	defer out.stop()
	meter := c.prov.NewStreamMeter(c.hideUsage)
	idle := time.AfterFunc(p.opts.IdleTimeout, cancel)
	defer idle.Stop()
	c.idleBody = idleReader{r: body, timer: idle, d: p.opts.IdleTimeout}
	fr := framing.Framer(&c.idleBody)
	defer fr.Release()

	// Response rules: the guard holds back, redacts and blocks the text
	// (block/redact rules) or only collects it (flags); without response
	// rules events pass untouched.
	var g *streamGuard
	var seen bytes.Buffer // raw event data, for providers the guard cannot read
	watch := c.rules.HasResponseRules()
	if watch {
		g, watch = newStreamGuard(c)
	}
	write := func(b []byte) error {
		first := c.firstByte.IsZero()
		if first {
			c.firstByte = p.now()
		}
		c.keepResponse(b)
		// Skip the flush only when a complete next event is already buffered:
		// events that arrived together leave in one write, and no event ever
		// waits for upstream bytes that have not arrived. The first event
		// (with the response header) leaves at once: the time to the first
		// chunk does not wait for the events behind it.
		return out.write(b, first || !fr.Buffered())
	}
	// blocked ends a stream the guard stopped: the violation is recorded
	// and the provider's error event closes what was sent.
	blocked := func(held []byte) {
		v := g.record(c)
		ev := g.stopEvent(held, v)
		if g.failed {
			c.outcome, c.errText = usage.OutcomeError, "response stream could not be re-encoded"
		} else {
			c.errText = "response blocked by policy"
		}
		c.keepResponse(ev)
		_ = out.write(ev, true)
	}
	// A meter that hides nothing (hideUsage off) cannot stop an event:
	// without a guard, each event is written before it is metered, so the
	// client never waits for the metering (a JSON scan of the event).
	meterAfter := g == nil && !c.hideUsage
	deliver := func(raw, name, data []byte) (stop bool, err error) {
		if meterAfter {
			err = write(raw)
		}
		forward := true
		if len(data) > 0 || len(name) > 0 {
			forward = meter.Event(name, data)
			if g == nil && watch && seen.Len()+len(data) < streamWatchLimit {
				seen.Write(data)
				seen.WriteByte('\n')
			}
		}
		if g != nil {
			out, stop := g.event(raw, name, data, forward)
			if stop {
				blocked(out)
				return true, nil
			}
			if len(out) == 0 {
				return false, nil
			}
			return false, write(out)
		}
		if meterAfter || !forward {
			return false, err
		}
		return false, write(raw)
	}
	defer func() {
		c.usage = meter.Usage()
		if g != nil {
			g.record(c)
			return
		}
		if watch && seen.Len() > 0 {
			res := c.rules.Evaluate(policy.Input{Provider: c.prov, Env: c.key.Env, Model: c.model, KeyID: c.key.ID,
				Body: seen.Bytes(), Direction: policy.DirectionResponse})
			for i := range res.Violations {
				res.Violations[i].Action = policy.ActionFlag
			}
			res.Blocked, res.Redacted = false, false
			c.applyPolicy(res)
		}
	}()

	for {
		raw, name, data, err := fr.Next()
		if err == nil {
			stop, werr := deliver(raw, name, data)
			if stop {
				return
			}
			if werr != nil {
				c.outcome, c.errText = usage.OutcomeClientClosed, "client closed connection"
				return
			}
			continue
		}
		// End of stream (clean or not): no keep-alive from now on. Deliver a
		// trailing partial event (unless the shutdown cut the stream: its
		// error event must start on an event boundary), then what the
		// guard still holds.
		out.stop()
		ended := c.open.ended.Load()
		if len(raw) > 0 && !ended && (g == nil || !g.enforce || len(data) > 0 || len(name) > 0) {
			if stop, _ := deliver(raw, name, data); stop {
				return
			}
		}
		if g != nil {
			if held, stop := g.finish(); stop {
				blocked(held)
				return
			} else if len(held) > 0 {
				_ = write(held)
			}
		}
		switch {
		case meter.Done():
			// The final event was delivered: a client closing right after
			// it (SDKs do, on [DONE]) is a complete stream, not a cut one.
		case ended:
			// The shutdown's grace period is over: the client gets an
			// error its SDK raises (not a silent end), the usage so far is
			// recorded.
			c.outcome, c.errText = usage.OutcomeError, errTextShutdown
			if st, ok := c.prov.(provider.StreamText); ok {
				ev := st.StreamErrorEvent(nil, &c.target, http.StatusServiceUnavailable, "gateway_shutting_down",
					"the gateway is shutting down and ended this stream; retry the request")
				c.keepResponse(ev)
				_ = out.write(ev, true)
			}
		case errors.Is(err, io.EOF):
			c.outcome, c.errText = usage.OutcomeError, "stream ended before its final event"
		case ctx.Err() != nil && c.outcome == usage.OutcomeOK:
			// Either the client left or the idle timer fired (then Stop
			// reports that it had already run).
			c.outcome, c.errText = usage.OutcomeClientClosed, "client closed connection"
			if !idle.Stop() {
				c.outcome, c.errText = usage.OutcomeError, "upstream idle timeout"
			}
		default:
			c.outcome, c.errText = usage.OutcomeError, "upstream stream failed: "+err.Error()
		}
		return
	}
}

// idleReader restarts the idle timer whenever upstream bytes arrive.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func (ir *idleReader) Read(b []byte) (int, error) {
	n, err := ir.r.Read(b)
	if n > 0 {
		ir.timer.Reset(ir.d)
	}
	return n, err
}
