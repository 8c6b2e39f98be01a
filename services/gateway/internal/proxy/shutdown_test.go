package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/proxy"
	"trueportai/services/gateway/internal/usage"
)

// TestEndCallsAnswersWaitingCalls: when the shutdown's grace period ends
// (EndCalls), a call still waiting for the provider's answer gets a 503 in
// the provider's shape with Retry-After (its SDK retries, on another
// replica), and so does a call that would start after it, which never
// reaches the provider; both are recorded.
func TestEndCallsAnswersWaitingCalls(t *testing.T) {
	var reached atomic.Int32
	arrived := make(chan struct{}, 1)
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // then net/http watches the connection
		arrived <- struct{}{}
		<-r.Context().Done()
	}), nil)
	type answer struct {
		resp *http.Response
		body []byte
	}
	got := make(chan answer, 1)
	go func() {
		resp := post(t, f.gw.URL+"/trueportai-services/anthropic/v1/messages", map[string]string{"X-Api-Key": callerKey, "anthropic-version": "2023-06-01"},
			`{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{resp, b}
	}()
	<-arrived
	if n := f.px.EndCalls(); n != 1 {
		t.Fatalf("EndCalls ended %d calls, want 1", n)
	}
	var a answer
	select {
	case a = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting call got no answer")
	}
	var shape struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(a.body, &shape); err != nil || a.resp.StatusCode != http.StatusServiceUnavailable ||
		shape.Type != "error" || shape.Error.Type != "overloaded_error" || a.resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("answer %d %q (Retry-After %q), want 503 in Anthropic's shape", a.resp.StatusCode, a.body, a.resp.Header.Get("Retry-After"))
	}
	if ev := f.evs.wait(t); ev.StatusCode != http.StatusServiceUnavailable || ev.Outcome != usage.OutcomeError || !strings.Contains(ev.Error, "shutdown") {
		t.Fatalf("event %+v", ev)
	}
	// Later calls are ended before they reach the provider.
	resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer " + callerKey},
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":"gateway_shutting_down"`) {
		t.Fatalf("call after EndCalls: %d %s", resp.StatusCode, b)
	}
	if reached.Load() != 1 {
		t.Fatalf("the provider saw %d requests, want 1", reached.Load())
	}
	if ev := f.evs.wait(t); ev.StatusCode != http.StatusServiceUnavailable || !strings.Contains(ev.Error, "shutdown") {
		t.Fatalf("event %+v", ev)
	}
}

// TestEndCallsEndsProxiedStream: through the whole proxy, a stream open at
// the end of the grace period gets Anthropic's error event after what was
// sent, and its usage event keeps the tokens metered so far.
func TestEndCallsEndsProxiedStream(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":42,\"output_tokens\":1}}}\n\n")
		_, _ = io.WriteString(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}), nil)
	resp := post(t, f.gw.URL+"/trueportai-services/anthropic/v1/messages", map[string]string{"X-Api-Key": callerKey, "anthropic-version": "2023-06-01"}, `{"model":"claude-sonnet-4-5","stream":true}`)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var sent strings.Builder
	for !strings.Contains(sent.String(), `"par"}}`+"\n\n") {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v after %q", err, sent.String())
		}
		sent.WriteString(line)
	}
	f.px.EndCalls()
	rest, _ := io.ReadAll(br)
	if !strings.HasPrefix(string(rest), "event: error\ndata: ") || !strings.Contains(string(rest), `"overloaded_error"`) {
		t.Fatalf("after the events sent: %q, want Anthropic's error event", rest)
	}
	ev := f.evs.wait(t)
	if ev.Outcome != usage.OutcomeError || !strings.Contains(ev.Error, "shutdown") || !ev.Stream || ev.StatusCode != http.StatusOK ||
		ev.PromptTokens == nil || *ev.PromptTokens != 42 {
		t.Fatalf("event %+v (prompt %v)", ev, ev.PromptTokens)
	}
}

// TestKeepAlivesThroughProxy: with KeepAliveInterval and Run, a stream
// whose upstream pauses gets SSE comments; the stored response body and
// the usage do not see them.
func TestKeepAlivesThroughProxy(t *testing.T) {
	const chunk = `data: {"id":"c","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}` + "\n\n"
	const tail = `data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}` + "\n\ndata: [DONE]\n\n"
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, chunk)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, tail)
	}), func(o *proxy.Options, _ *keys.Key, tn *platform.Tenant) {
		o.KeepAliveInterval = 40 * time.Millisecond
		tn.LogResponseBodies = true
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.px.Run(ctx)
	resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer " + callerKey},
		`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	n := strings.Count(string(b), ": keep-alive\n\n")
	if n < 3 || strings.ReplaceAll(string(b), ": keep-alive\n\n", "") != chunk+tail || !strings.HasPrefix(string(b), chunk) {
		t.Fatalf("%d keep-alives (want >= 3, between the two events only): %q", n, b)
	}
	ev := f.evs.wait(t)
	if ev.ResponseBody == nil || *ev.ResponseBody != chunk+tail || ev.TotalTokens == nil || *ev.TotalTokens != 8 || ev.Outcome != usage.OutcomeOK {
		t.Fatalf("event %+v, body %v", ev, ev.ResponseBody)
	}
}
