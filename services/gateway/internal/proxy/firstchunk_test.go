package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
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

// pieceReader returns at most max bytes a read.
type pieceReader struct {
	r   io.Reader
	max int
}

func (p pieceReader) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.max)]) }

// TestRelayBodyCapturesInPlace: a complete response is relayed byte for
// byte whatever its reads and whether its length is known, and metered
// from the buffer it was read into; one larger than captureLimit is
// relayed whole and not metered.
func TestRelayBodyCapturesInPlace(t *testing.T) {
	body := func(pad int) []byte {
		return []byte(`{"model":"gpt-4o-mini","usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18},"pad":"` +
			strings.Repeat("x", pad) + `"}`)
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		known   bool
		metered bool
	}{
		{"small, length known", body(10), true, true},
		{"50 KB, length unknown", body(50_000), false, true},
		{"50 KB, length known", body(50_000), true, true},
		{"over the capture limit", body(captureLimit), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newBenchHarness(t, benchJSONBody)
			size := int64(-1)
			if tc.known {
				size = int64(len(tc.body))
			}
			h.p.rt = roundTripFunc(func(r *http.Request) (*http.Response, error) {
				_, _ = io.Copy(io.Discard, r.Body)
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(pieceReader{bytes.NewReader(tc.body), 3000}), ContentLength: size, Request: r}, nil
			})
			w := &flushWriter{h: http.Header{}}
			h.rb.Reset(h.body)
			h.req.Body = h.rb
			h.p.ServeHTTP(w, h.req)
			if w.status != http.StatusOK || !bytes.Equal(w.body.Bytes(), tc.body) {
				t.Fatalf("status %d, relayed %d bytes of %d", w.status, w.body.Len(), len(tc.body))
			}
			ev := h.pub.last
			if metered := ev.TotalTokens != nil && *ev.TotalTokens == 18; metered != tc.metered || ev.Outcome != usage.OutcomeOK {
				t.Fatalf("usage event %+v: metered %v, want %v", ev, metered, tc.metered)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
