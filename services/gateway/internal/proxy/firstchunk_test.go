package proxy

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"trueportai/services/gateway/internal/usage"
)

// flushWriter records the answer and the length it had at every flush.
type flushWriter struct {
	h       http.Header
	status  int
	body    bytes.Buffer
	flushes []int
}

func (w *flushWriter) Header() http.Header         { return w.h }
func (w *flushWriter) WriteHeader(code int)        { w.status = code }
func (w *flushWriter) Write(p []byte) (int, error) { return w.body.Write(p) }
func (w *flushWriter) Flush()                      { w.flushes = append(w.flushes, w.body.Len()) }

// TestStreamFirstEventLeavesAlone: when the upstream's events arrive
// together (the canned upstream's body is read at once), the first event
// is flushed by itself, so the time to first chunk does not wait for the
// events behind it; the others still leave together, in one flush, and
// the stream is metered.
func TestStreamFirstEventLeavesAlone(t *testing.T) {
	h := newBenchHarness(t, benchStreamBody)
	first := bytes.Index(h.up.body, []byte("\n\n")) + 2
	if first < 2 || first >= len(h.up.body) {
		t.Fatalf("canned stream has no complete first event: %q", h.up.body)
	}
	w := &flushWriter{h: http.Header{}}
	h.rb.Reset(h.body)
	h.req.Body = h.rb
	h.p.ServeHTTP(w, h.req)
	if w.status != http.StatusOK || !bytes.Equal(w.body.Bytes(), h.up.body) {
		t.Fatalf("status %d, relayed %q", w.status, w.body.Bytes())
	}
	if len(w.flushes) != 2 || w.flushes[0] != first || w.flushes[1] != len(h.up.body) {
		t.Fatalf("flushed at %v bytes, want at %d (the first event) and %d (the rest)", w.flushes, first, len(h.up.body))
	}
	if ev := h.pub.last; ev == nil || ev.TotalTokens == nil || ev.Outcome != "ok" {
		t.Fatalf("usage event %+v", ev)
	}
}

// errGone is what gonePastFirstFlush's flush reports.
var errGone = errors.New("client gone after its first chunk")

// gonePastFirstFlush is a discardWriter whose client leaves at the first
// flush (http.ResponseController.Flush takes FlushError's error).
type gonePastFirstFlush struct{ *discardWriter }

func (w gonePastFirstFlush) FlushError() error {
	w.flushes++
	return errGone
}

// BenchmarkStreamToFirstFlush is a streamed request (BenchmarkProxyStream's)
// up to the first flush toward the client, the moment its first chunk
// leaves, where the client goes away: the work before the first chunk,
// plus the relay's end and the usage event of a cut stream. Under callgrind
// its instruction count is the pre-first-chunk path's, up to that constant
// tail.
func BenchmarkStreamToFirstFlush(b *testing.B) {
	h := newBenchHarness(b, benchStreamBody)
	w := gonePastFirstFlush{h.w}
	serve := func() {
		h.w.reset()
		h.rb.Reset(h.body)
		h.req.Body = h.rb
		h.p.ServeHTTP(w, h.req)
	}
	serve()
	if h.w.flushes != 1 || h.w.n == 0 || h.pub.last.Outcome != usage.OutcomeClientClosed {
		b.Fatalf("%d flushes, %d bytes, usage event %+v", h.w.flushes, h.w.n, h.pub.last)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
