package fakeprovider

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Request headers that override the configuration for one request.
const (
	headerDelay      = "x-fake-delay-ms"
	headerChunks     = "x-fake-chunks"
	headerChunkDelay = "x-fake-chunk-delay-ms"
	headerStatus     = "x-fake-status"
	headerPause      = "x-fake-pause-ms"
)

// maxDelayMillis bounds the delays accepted from request headers (one hour).
const maxDelayMillis = 3_600_000

// options is the effective behaviour for one request.
type options struct {
	delay      time.Duration
	chunks     int
	chunkDelay time.Duration
	status     int // injected error status, 0 when none
	// pause is a silence in the middle of a stream (before the piece
	// chunks/2), the pause knob: x-fake-pause-ms, or a model name with
	// "pause-<Go duration>" in it (which passes a gateway that forwards no
	// x-fake-* header), e.g. "gpt-4o-mini-pause-20s".
	pause time.Duration
}

// requestOptions merges the server configuration with the x-fake-* headers.
// Invalid header values are ignored.
func (s *server) requestOptions(h http.Header) options {
	o := options{delay: s.cfg.Delay, chunks: s.cfg.Chunks, chunkDelay: s.cfg.ChunkDelay}
	if v, ok := headerInt(h, headerDelay, 0, maxDelayMillis); ok {
		o.delay = time.Duration(v) * time.Millisecond
	}
	if v, ok := headerInt(h, headerChunks, 1, maxChunks); ok {
		o.chunks = v
	}
	if v, ok := headerInt(h, headerChunkDelay, 0, maxDelayMillis); ok {
		o.chunkDelay = time.Duration(v) * time.Millisecond
	}
	if v, ok := headerInt(h, headerStatus, 400, 599); ok {
		o.status = v
	}
	if v, ok := headerInt(h, headerPause, 0, maxDelayMillis); ok {
		o.pause = time.Duration(v) * time.Millisecond
	}
	return o
}

// pauseKnob matches the pause knob in a model name.
var pauseKnob = regexp.MustCompile(`pause-([0-9]+(?:ms|s|m))`)

// modelPause reads the pause knob from the model a request names: in its
// path (Gemini, Azure deployments, Bedrock) or its body's "model" member.
func modelPause(path string, body []byte) (time.Duration, bool) {
	m := pauseKnob.FindStringSubmatch(path)
	if m == nil && bytes.Contains(body, []byte("pause-")) {
		var req struct {
			Model string `json:"model"`
		}
		if json.Unmarshal(body, &req) == nil {
			m = pauseKnob.FindStringSubmatch(req.Model)
		}
	}
	if m == nil {
		return 0, false
	}
	d, err := time.ParseDuration(m[1])
	if err != nil || d > maxDelayMillis*time.Millisecond {
		return 0, false
	}
	return d, true
}

// headerInt parses header name as an integer within [lo, hi].
func headerInt(h http.Header, name string, lo, hi int) (int, bool) {
	raw := strings.TrimSpace(h.Get(name))
	if raw == "" {
		return 0, false
	}
	v, err := strconv.Atoi(raw)
	if err != nil || v < lo || v > hi {
		return 0, false
	}
	return v, true
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
