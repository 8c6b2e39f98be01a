package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/usage"
)

// upstreamEvents splits a provider's stream into its raw events.
func upstreamEvents(t testing.TB, sh streamShape, b []byte) [][]byte {
	t.Helper()
	fr := sh.prov.Framing(sh.contentType).Framer(bytes.NewReader(b))
	defer fr.Release()
	var out [][]byte
	for {
		raw, _, _, err := fr.Next()
		if len(raw) > 0 {
			out = append(out, bytes.Clone(raw))
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: upstream stream: %v", sh.name, err)
		}
	}
}

// pausedUpstream is an upstream body sending the first `before` events,
// then nothing until release is closed (or for pause), then the rest.
func pausedUpstream(events [][]byte, before int, pause time.Duration, release <-chan struct{}) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for i, ev := range events {
			if i == before {
				select {
				case <-time.After(pause):
				case <-release:
					_ = pw.CloseWithError(context.Canceled)
					return
				}
			}
			if _, err := pw.Write(ev); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	return pr
}

// streamHarness relays one upstream stream to a real HTTP client through
// relayStream, the call listed as forward lists it.
type streamHarness struct {
	p    *Proxy
	c    *call
	resp *http.Response
	done chan struct{} // closed when the relay returned
}

func newStreamHarness(t *testing.T, sh streamShape, set *policy.Set, keepAlive time.Duration, upstream func(ctx context.Context) io.Reader) *streamHarness {
	t.Helper()
	p := &Proxy{log: slog.New(slog.DiscardHandler), opts: Options{IdleTimeout: time.Minute, KeepAliveInterval: keepAlive}, now: time.Now}
	runCtx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go p.Run(runCtx)
	c := &call{prov: sh.prov, rules: set, target: sh.target, outcome: usage.OutcomeOK, model: "m",
		key: &keys.Key{ID: "k", Env: "live"}, tenant: &platform.Tenant{LogResponseBodies: true}}
	h := &streamHarness{p: p, c: c, done: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(h.done)
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		p.open.add(&c.open, cancel)
		defer p.open.remove(&c.open)
		w.Header().Set("Content-Type", sh.contentType)
		w.WriteHeader(http.StatusOK)
		p.relayStream(ctx, cancel, w, sh.prov.Framing(sh.contentType), upstream(ctx), c)
	}))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	h.resp = resp
	return h
}

// splitKeepAlives takes what a client received apart into the events (in
// the provider's framing) and the keep-alives between them: every piece
// the framer reads is either a whole keep-alive or carries an event, so a
// keep-alive written inside an event would show as an altered event.
func splitKeepAlives(t *testing.T, sh streamShape, got []byte) (events []byte, keepAlives int) {
	t.Helper()
	ka, _ := sh.prov.(provider.StreamKeepAlive)
	var alive []byte
	if ka != nil {
		alive = ka.KeepAlive(sh.prov.Framing(sh.contentType))
	}
	if alive == nil {
		return got, 0
	}
	fr := sh.prov.Framing(sh.contentType).Framer(bytes.NewReader(got))
	defer fr.Release()
	var pending []byte // blank lines that may make up a keep-alive
	for {
		raw, name, data, err := fr.Next()
		switch {
		case len(raw) == 0:
		case len(name) == 0 && len(data) == 0 && strings.Trim(string(raw), "\r\n") == "":
			pending = append(pending, raw...)
		case bytes.Equal(raw, alive):
			keepAlives++
		default:
			if len(pending) > 0 {
				t.Fatalf("%s: stray blank lines %q before event %q", sh.name, pending, raw)
			}
			events = append(events, raw...)
		}
		for len(pending) >= len(alive) && bytes.HasPrefix(pending, alive) {
			pending = pending[len(alive):]
			keepAlives++
		}
		if err != nil {
			if len(pending) > 0 {
				t.Fatalf("%s: stray blank lines %q at the end", sh.name, pending)
			}
			return events, keepAlives
		}
	}
}

// TestStreamKeepAlives: a stream silent toward its client gets keep-alives
// while the upstream pauses, only between two events, in its provider's
// form (an SSE comment, Gemini's empty event, none for Bedrock's event
// stream); they are not metered and not in the stored response body, and
// the client's events are exactly the upstream's. With response rules that
// hold text back the keep-alives still fall between events.
func TestStreamKeepAlives(t *testing.T) {
	const interval, pause = 40 * time.Millisecond, 400 * time.Millisecond
	redact := responseRules(t, policy.Rule{Type: policy.TypePII, Action: policy.ActionRedact, Config: []byte(`{"kinds":["email"]}`)})
	for _, sh := range allShapes(t) {
		for _, guarded := range []bool{false, true} {
			name := sh.name
			var set *policy.Set
			if guarded {
				name, set = name+" guarded", redact
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				up := sh.build(splitPieces)
				events := upstreamEvents(t, sh, up)
				h := newStreamHarness(t, sh, set, interval, func(context.Context) io.Reader {
					return pausedUpstream(events, len(events)/2, pause, nil)
				})
				got, err := io.ReadAll(h.resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				<-h.done
				relayed, n := splitKeepAlives(t, sh, got)
				want := up
				if guarded {
					want, _ = relayGuarded(t, sh, set, up, false)
				}
				if !bytes.Equal(relayed, want) {
					t.Fatalf("events relayed around the keep-alives differ:\n got %q\nwant %q", relayed, want)
				}
				_, hasKeepAlive := sh.prov.(provider.StreamKeepAlive)
				if strings.HasPrefix(sh.name, "bedrock") {
					if n != 0 || hasKeepAlive {
						t.Fatalf("an event stream got %d keep-alives", n)
					}
				} else if n < 3 {
					// pause/interval = 10 intervals of silence: at least 3 even on a loaded machine.
					t.Fatalf("%d keep-alives during a %s pause with a %s interval; want at least 3:\n%q", n, pause, interval, got)
				}
				c := h.c
				if !c.usage.Known || c.usage.TotalTokens != 8 || c.outcome == usage.OutcomeError {
					t.Fatalf("usage %+v, outcome %s %s", c.usage, c.outcome, c.errText)
				}
				if !bytes.Equal(c.respBody.Bytes(), want) {
					t.Fatalf("stored response body differs from the events sent:\n got %q\nwant %q", c.respBody.Bytes(), want)
				}
			})
		}
	}
}

// No interval, no keep-alive: the stream is exactly the upstream's.
func TestStreamKeepAlivesOff(t *testing.T) {
	sh := sseShapes[0]
	up := sh.build(splitPieces)
	events := upstreamEvents(t, sh, up)
	h := newStreamHarness(t, sh, nil, 0, func(context.Context) io.Reader { return pausedUpstream(events, 2, 200*time.Millisecond, nil) })
	got, _ := io.ReadAll(h.resp.Body)
	if !bytes.Equal(got, up) {
		t.Fatalf("got %q, want %q", got, up)
	}
}

// TestEndCallsEndsStreams: at the end of the shutdown's grace period a
// stream still open ends with its provider's error event, which the
// provider's SDKs raise (no silent end), after the events already sent;
// the upstream is cancelled and the usage so far is kept with an error
// saying why.
func TestEndCallsEndsStreams(t *testing.T) {
	for _, sh := range allShapes(t) {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			up := sh.build(splitPieces)
			events := upstreamEvents(t, sh, up)
			before := len(events) / 2
			cancelled := make(chan struct{})
			h := newStreamHarness(t, sh, nil, time.Hour, func(ctx context.Context) io.Reader {
				go func() { <-ctx.Done(); close(cancelled) }()
				return pausedUpstream(events, before, time.Hour, ctx.Done())
			})
			// The events before the pause arrive; then the grace period ends.
			var first []byte
			for _, ev := range events[:before] {
				first = append(first, ev...)
			}
			got := make([]byte, len(first))
			if _, err := io.ReadFull(h.resp.Body, got); err != nil || !bytes.Equal(got, first) {
				t.Fatalf("first events %q (%v), want %q", got, err, first)
			}
			if n := h.p.EndCalls(); n != 1 {
				t.Fatalf("EndCalls ended %d calls, want 1", n)
			}
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("upstream not cancelled")
			}
			rest, err := io.ReadAll(h.resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			<-h.done
			all := append(got, rest...)
			wantText, _ := sh.read(t, first)
			text, errored := sh.read(t, all)
			if !errored || text != wantText {
				t.Fatalf("client read %q, errored=%v; want %q and an error event:\n%q", text, errored, wantText, rest)
			}
			st := sh.prov.(provider.StreamText)
			if wantEv := st.StreamErrorEvent(nil, &sh.target, http.StatusServiceUnavailable, "gateway_shutting_down",
				"the gateway is shutting down and ended this stream; retry the request"); !bytes.Equal(rest, wantEv) {
				t.Fatalf("after the first events the client got %q, want the error event %q", rest, wantEv)
			}
			c := h.c
			if c.outcome != usage.OutcomeError || c.errText != errTextShutdown {
				t.Fatalf("outcome %s %q", c.outcome, c.errText)
			}
		})
	}
}

// afterWriter is a ResponseWriter that fails the test on a write after
// the handler is done with it.
type afterWriter struct {
	t    *testing.T
	h    http.Header
	mu   sync.Mutex
	done bool
	buf  bytes.Buffer
}

func (w *afterWriter) Header() http.Header { return w.h }
func (w *afterWriter) WriteHeader(int)     {}
func (w *afterWriter) Flush()              {}
func (w *afterWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		w.t.Errorf("write after the relay returned: %q", b)
	}
	return w.buf.Write(b)
}

// TestNoKeepAliveAfterTheRelay: however the relay returns (a block by a
// response rule, the end of the stream), the ticker writes nothing more,
// even while the call is still listed.
func TestNoKeepAliveAfterTheRelay(t *testing.T) {
	block := responseRules(t, policy.Rule{Type: policy.TypeSecrets, Action: policy.ActionBlock, Config: []byte(`{}`)})
	for name, set := range map[string]*policy.Set{"blocked": block, "ended": nil} {
		t.Run(name, func(t *testing.T) {
			sh := sseShapes[0]
			p := &Proxy{log: slog.New(slog.DiscardHandler), opts: Options{IdleTimeout: time.Minute, KeepAliveInterval: 20 * time.Millisecond}, now: time.Now}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Run(ctx)
			c := &call{prov: sh.prov, rules: set, target: sh.target, outcome: usage.OutcomeOK, model: "m",
				key: &keys.Key{ID: "k", Env: "live"}, tenant: &platform.Tenant{}}
			p.open.add(&c.open, cancel)
			w := &afterWriter{t: t, h: http.Header{}}
			p.relayStream(ctx, cancel, w, sh.prov.Framing(sh.contentType), bytes.NewReader(sh.build(splitPieces)), c)
			w.mu.Lock()
			w.done = true
			w.mu.Unlock()
			time.Sleep(200 * time.Millisecond) // 10 intervals, the call still listed
			p.open.remove(&c.open)
			if name == "blocked" && c.outcome != usage.OutcomeBlocked {
				t.Fatalf("outcome %s", c.outcome)
			}
		})
	}
}

// BenchmarkOpenCalls is what listing a call costs each proxied request
// (joining and leaving the list of open calls), with parallel requests
// contending for the list's mutex.
func BenchmarkOpenCalls(b *testing.B) {
	var o openCalls
	_, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var c openCall
		for pb.Next() {
			o.add(&c, cancel)
			o.remove(&c)
		}
	})
}
