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

// streamWatchLimit bounds the stream text kept for response-rule flagging.
const streamWatchLimit = 1 << 20

// relayStream copies a streamed response one event at a time, in the
// provider's framing: each complete event is metered, written and flushed
// before the next is read, so a slow client throttles the upstream read
// (bounded buffering). The upstream is cancelled when it stays silent for the
// idle timeout or when the client goes away.
func (p *Proxy) relayStream(ctx context.Context, cancel context.CancelFunc, w http.ResponseWriter, framing provider.Framing, body io.Reader, c *call) {
	rc := http.NewResponseController(w)
	meter := c.prov.NewStreamMeter(c.hideUsage)
	idle := time.AfterFunc(p.opts.IdleTimeout, cancel)
	defer idle.Stop()
	c.idleBody = idleReader{r: body, timer: idle, d: p.opts.IdleTimeout}
	fr := framing.Framer(&c.idleBody)
	defer fr.Release()

	// Response rules on streams flag only: the events are already sent.
	var seen bytes.Buffer
	watch := c.rules.HasResponseRules()
	deliver := func(raw, name, data []byte) error {
		if len(data) > 0 || len(name) > 0 {
			forward := meter.Event(name, data)
			if watch && seen.Len()+len(data) < streamWatchLimit {
				seen.Write(data)
				seen.WriteByte('\n')
			}
			if !forward {
				return nil
			}
		}
		if c.firstByte.IsZero() {
			c.firstByte = p.now()
		}
		c.keepResponse(raw)
		if _, err := w.Write(raw); err != nil {
			return err
		}
		// Skip the flush only when a complete next event is already buffered:
		// events that arrived together leave in one write, and no event ever
		// waits for upstream bytes that have not arrived.
		if fr.Buffered() {
			return nil
		}
		return rc.Flush()
	}
	defer func() {
		c.usage = meter.Usage()
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
			if werr := deliver(raw, name, data); werr != nil {
				c.outcome, c.errText = usage.OutcomeClientClosed, "client closed connection"
				return
			}
			continue
		}
		// End of stream (clean or not): deliver a trailing partial event.
		if len(raw) > 0 {
			_ = deliver(raw, name, data)
		}
		switch {
		case meter.Done():
			// The final event was delivered: a client closing right after
			// it (SDKs do, on [DONE]) is a complete stream, not a cut one.
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
