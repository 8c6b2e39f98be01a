package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/usage"
)

// streamWatchLimit bounds the stream text kept for response-rule flagging.
const streamWatchLimit = 1 << 20

// maxEventBytes bounds one SSE event (a larger one ends the stream as an error).
const maxEventBytes = 8 << 20

var errEventTooLarge = errors.New("sse event too large")

// relaySSE copies an event stream one event at a time: each complete event is
// metered, written and flushed before the next is read, so a slow client
// throttles the upstream read (bounded buffering). The upstream is cancelled
// when it stays silent for the idle timeout or when the client goes away.
func (p *Proxy) relaySSE(ctx context.Context, cancel context.CancelFunc, w http.ResponseWriter, body io.Reader, c *call) {
	rc := http.NewResponseController(w)
	meter := c.prov.NewStreamMeter(c.hideUsage)
	idle := time.AfterFunc(p.opts.IdleTimeout, cancel)
	defer idle.Stop()
	br, _ := p.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(body, 32*1024)
	} else {
		br.Reset(body)
	}
	defer func() { br.Reset(nil); p.readers.Put(br) }()

	// Response rules on streams flag only: the events are already sent.
	var seen bytes.Buffer
	watch := c.rules.HasResponseRules()
	raw, data := p.getBuffer(), p.getBuffer() // the event's bytes as received; its data payload
	defer p.putBuffer(raw)
	defer p.putBuffer(data)
	var name []byte
	flushEvent := func() error {
		if raw.Len() == 0 {
			return nil
		}
		defer func() { raw.Reset(); data.Reset(); name = name[:0] }()
		if data.Len() > 0 || len(name) > 0 {
			forward := meter.Event(name, data.Bytes())
			if watch && seen.Len()+data.Len() < streamWatchLimit {
				seen.Write(data.Bytes())
				seen.WriteByte('\n')
			}
			if !forward {
				return nil
			}
		}
		if c.firstByte.IsZero() {
			c.firstByte = p.now()
		}
		c.keepResponse(raw.Bytes())
		if _, err := w.Write(raw.Bytes()); err != nil {
			return err
		}
		// Skip the flush only when a complete next event is already buffered:
		// events that arrived together leave in one write, and no event ever
		// waits for upstream bytes that have not arrived.
		if n := br.Buffered(); n > 0 {
			if next, _ := br.Peek(n); bytes.Contains(next, []byte("\n\n")) || bytes.Contains(next, []byte("\r\n\r\n")) {
				return nil
			}
		}
		return rc.Flush()
	}
	finish := func() {
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
	}
	defer finish()

	for {
		line, err := readLine(br, maxEventBytes-raw.Len())
		if len(line) > 0 {
			idle.Reset(p.opts.IdleTimeout)
			raw.Write(line)
			content := bytes.TrimRight(line, "\r\n")
			switch {
			case len(content) == 0:
				if werr := flushEvent(); werr != nil {
					c.outcome, c.errText = usage.OutcomeClientClosed, "client closed connection"
					return
				}
			case bytes.HasPrefix(content, []byte("data:")):
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(bytes.TrimPrefix(bytes.TrimPrefix(content, []byte("data:")), []byte(" ")))
			case bytes.HasPrefix(content, []byte("event:")):
				name = append(name[:0], bytes.TrimSpace(content[len("event:"):])...)
			}
		}
		if err == nil {
			continue
		}
		// End of stream (clean or not): deliver a trailing partial event.
		if raw.Len() > 0 && !errors.Is(err, errEventTooLarge) {
			_ = flushEvent()
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

// readLine reads through the next '\n' without a fixed line-length limit
// (beyond max, which bounds one event).
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	buf := append([]byte(nil), line...)
	for {
		if len(buf) > max {
			return buf, errEventTooLarge
		}
		line, err = br.ReadSlice('\n')
		buf = append(buf, line...)
		if err != bufio.ErrBufferFull {
			return buf, err
		}
	}
}
