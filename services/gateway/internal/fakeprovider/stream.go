package fakeprovider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Content types of streamed answers.
const (
	contentTypeSSE       = "text/event-stream; charset=utf-8"
	contentTypeJSONArray = "application/json; charset=UTF-8"
)

// streamer writes a streamed answer, flushing after every write. The first
// failure (client gone, context cancelled) is sticky: later calls do nothing,
// so producers only need to check failed() to stop early.
type streamer struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	ctx        context.Context
	chunkDelay time.Duration
	// midPause is an extra silence before the piece at pauseAt (the
	// pause knob); pauses counts the pauses so far.
	midPause time.Duration
	pauseAt  int
	pauses   int
	err      error
}

// newStreamer sends the 200 header with contentType and returns a streamer
// pacing its pieces as o says.
func newStreamer(w http.ResponseWriter, r *http.Request, contentType string, o options) *streamer {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &streamer{w: w, rc: http.NewResponseController(w), ctx: r.Context(), chunkDelay: o.chunkDelay,
		midPause: o.pause, pauseAt: max(o.chunks/2, 1)}
	s.flush()
	return s
}

// failed reports whether the stream has stopped.
func (s *streamer) failed() bool {
	return s.err != nil
}

// raw writes b and flushes it.
func (s *streamer) raw(b []byte) {
	if s.err != nil {
		return
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return
	}
	if _, err := s.w.Write(b); err != nil {
		s.err = err
		return
	}
	s.flush()
}

// flush pushes buffered bytes to the client.
func (s *streamer) flush() {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
	}
}

// event writes one named server-sent event: "event: NAME\ndata: JSON\n\n".
func (s *streamer) event(name string, v any) {
	s.frame("event: "+name+"\ndata: ", v, "\n\n")
}

// data writes one unnamed server-sent event: "data: JSON" + terminator.
func (s *streamer) data(v any, terminator string) {
	s.frame("data: ", v, terminator)
}

// frame writes prefix, v as JSON and suffix in one write.
func (s *streamer) frame(prefix string, v any, suffix string) {
	if s.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	buf := make([]byte, 0, len(prefix)+len(b)+len(suffix))
	buf = append(buf, prefix...)
	buf = append(buf, b...)
	buf = append(buf, suffix...)
	s.raw(buf)
}

// pause waits for the configured chunk delay (plus the mid-stream pause
// before the middle piece) unless the request ends first.
func (s *streamer) pause() {
	if s.err != nil {
		return
	}
	d := s.chunkDelay
	if s.pauses++; s.pauses == s.pauseAt {
		d += s.midPause
	}
	if err := sleep(s.ctx, d); err != nil {
		s.err = err
	}
}
