package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
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
	"trueportai/services/gateway/internal/pricing"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/registry"
	"trueportai/services/gateway/internal/proxy"
	"trueportai/services/gateway/internal/quota"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/ratelimit"
)

const callerKey = "sk-TESTCALLERKEY0123456789abcdefghijklmnopq"

type oneKey struct{ k *keys.Key }

func (o oneKey) Lookup(h [32]byte) (*keys.Key, bool) {
	if h == o.k.Hash {
		return o.k, true
	}
	return nil, false
}

type oneTenant struct{ t *platform.Tenant }

func (o oneTenant) Get(id string) (*platform.Tenant, bool) { return o.t, id == o.t.ID }
func (oneTenant) Prefetch(string)                          {}

type events struct {
	mu  sync.Mutex
	evs []*usage.Event
	got chan *usage.Event
}

func (e *events) Publish(ev *usage.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	select {
	case e.got <- ev:
	default:
	}
}

func (e *events) wait(t *testing.T) *usage.Event {
	t.Helper()
	select {
	case ev := <-e.got:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no usage event")
		return nil
	}
}

type zeroCounts struct{}

func (zeroCounts) CountSince(context.Context, time.Time) (map[string]int64, error) {
	return map[string]int64{}, nil
}

type fixture struct {
	px   *proxy.Proxy
	gw   *httptest.Server
	evs  *events
	key  *keys.Key
	tn   *platform.Tenant
	opts proxy.Options
}

// newFixture runs the proxy in front of upstream (nil: none).
func newFixture(t *testing.T, upstream http.Handler, tweak func(*proxy.Options, *keys.Key, *platform.Tenant)) *fixture {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	k := &keys.Key{ID: "key-1", TenantID: "tenant-1", Env: "production", Name: "test", Hash: keys.Hash(callerKey), Enabled: true, RPMLimit: 1000}
	tn := &platform.Tenant{ID: "tenant-1", Status: "active", PlanID: "pro", MonthlyRequests: 1_000_000, Providers: map[string]provider.Credential{
		"openai": {APIKey: "sk-upstream-openai"}, "anthropic": {APIKey: "upstream-anthropic"}, "google": {APIKey: "upstream-google"}, "azure": {APIKey: "upstream-azure"},
	}}
	prices, _ := pricing.Default()
	q := quota.New(zeroCounts{})
	_ = q.Sync(context.Background(), time.Now())
	opts := proxy.Options{
		Providers: testProviders(t, map[string]string{"UPSTREAM_OPENAI_URL": up.URL + "/v1", "UPSTREAM_ANTHROPIC_URL": up.URL + "/v1",
			"UPSTREAM_GOOGLE_URL": up.URL + "/v1beta", "UPSTREAM_AZURE_URL_TEMPLATE": up.URL + "/{resource}/{deployment}"}),
		BodyLimit: 1 << 20, HeaderTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second, Prices: prices, Quota: q,
	}
	if tweak != nil {
		tweak(&opts, k, tn)
	}
	evs := &events{got: make(chan *usage.Event, 16)}
	p := proxy.New(slog.New(slog.NewTextHandler(io.Discard, nil)), oneKey{k}, oneTenant{tn}, ratelimit.New(), evs, opts)
	gw := httptest.NewServer(p)
	t.Cleanup(gw.Close)
	return &fixture{px: p, gw: gw, evs: evs, key: k, tn: tn, opts: opts}
}

func post(t *testing.T, url string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

const chatJSON = `{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500}}`

func TestHeadersNeverCross(t *testing.T) {
	var seen http.Header
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		h := w.Header()
		h.Set("Set-Cookie", "session=upstream")
		h.Set("X-Api-Key", "leak")
		h.Set("Authorization", "Bearer leak")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "hop")
		h.Set("Openai-Processing-Ms", "12")
		h.Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatJSON)
	}), nil)
	resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{
		"X-Api-Key": callerKey, "Authorization": "Bearer " + callerKey, "Cookie": "a=b", "Proxy-Authorization": "Basic x",
		"Connection": "X-Custom-Hop", "X-Custom-Hop": "1", "X-Forwarded-For": "1.2.3.4", "Api-Key": callerKey, "X-Goog-Api-Key": callerKey,
		"Openai-Organization": "org-1", "X-Tenant-Slug": "acme",
	}, `{"model":"gpt-4o-mini","messages":[]}`)
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := seen.Get("Authorization"); got != "Bearer sk-upstream-openai" {
		t.Fatalf("upstream Authorization %q", got)
	}
	for _, h := range []string{"X-Api-Key", "Cookie", "Proxy-Authorization", "X-Custom-Hop", "X-Forwarded-For", "Api-Key", "X-Goog-Api-Key", "X-Tenant-Slug"} {
		if seen.Get(h) != "" {
			t.Errorf("upstream received %s", h)
		}
	}
	if seen.Get("Openai-Organization") != "org-1" {
		t.Error("a provider header was not passed through")
	}
	for _, h := range []string{"Set-Cookie", "X-Api-Key", "Authorization", "X-Hop"} {
		if resp.Header.Get(h) != "" {
			t.Errorf("client received %s", h)
		}
	}
	if resp.Header.Get("Openai-Processing-Ms") != "12" || resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Gateway-Overhead-Ms") == "" {
		t.Errorf("response headers: %v", resp.Header)
	}
	ev := f.evs.wait(t)
	if ev.CostUSD == nil || ev.CostUSD.String() != "0.00045" { // (1000·0.15 + 500·0.60) / 1M
		t.Fatalf("cost %v", ev.CostUSD)
	}
	if ev.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatal("usage event id differs from x-request-id")
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	hit := false
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer other.Close()
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}), nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", f.gw.URL+"/trueportai-services/openai/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// An upstream redirect is a 502 in the provider's shape: neither
	// followed nor passed on with its Location.
	if resp.StatusCode != http.StatusBadGateway || hit || resp.Header.Get("Location") != "" || !strings.Contains(string(b), `"upstream_redirect"`) {
		t.Fatalf("status %d, Location %q, redirect target hit: %v, body %s", resp.StatusCode, resp.Header.Get("Location"), hit, b)
	}
}

func TestRefusalsInProviderShape(t *testing.T) {
	hits := 0
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }), func(o *proxy.Options, k *keys.Key, tn *platform.Tenant) {
		o.BodyLimit = 100
		k.AllowedModels = []string{"gpt-4o-mini"}
	})
	cases := []struct {
		name, path, key, body string
		status                int
		check                 func(map[string]any) bool
	}{
		{"openai no key", "/trueportai-services/openai/v1/chat/completions", "", `{}`, 401, func(m map[string]any) bool {
			e, _ := m["error"].(map[string]any)
			return e["type"] == "authentication_error" && e["code"] == "missing_api_key"
		}},
		{"anthropic bad key", "/trueportai-services/anthropic/v1/messages", "sk-nope", `{}`, 401, func(m map[string]any) bool {
			e, _ := m["error"].(map[string]any)
			return m["type"] == "error" && e["type"] == "authentication_error"
		}},
		{"google bad key", "/trueportai-services/google/v1beta/models/g:generateContent", "sk-nope", `{}`, 401, func(m map[string]any) bool {
			e, _ := m["error"].(map[string]any)
			return e["status"] == "UNAUTHENTICATED" && e["code"] == float64(401)
		}},
		{"too large", "/trueportai-services/openai/v1/chat/completions", callerKey, strings.Repeat("x", 200), 413, nil},
		{"model not allowed", "/trueportai-services/openai/v1/chat/completions", callerKey, `{"model":"gpt-4o"}`, 403, nil},
		{"traversal", "/trueportai-services/openai/v1/%2e%2e/admin", callerKey, `{}`, 400, nil},
	}
	for _, c := range cases {
		hdr := map[string]string{}
		if c.key != "" {
			hdr["X-Api-Key"] = c.key
		}
		resp := post(t, f.gw.URL+c.path, hdr, c.body)
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.check != nil && !c.check(m)) {
			t.Errorf("%s: %d %v", c.name, resp.StatusCode, m)
		}
	}
	if hits != 0 {
		t.Fatalf("%d refused requests reached the upstream", hits)
	}
}

func TestRateLimitAndQuota(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatJSON)
	}), func(o *proxy.Options, k *keys.Key, tn *platform.Tenant) {
		k.RPMLimit = 2
		tn.MonthlyRequests = 3
	})
	url := f.gw.URL + "/trueportai-services/openai/v1/chat/completions"
	hdr := map[string]string{"Authorization": "Bearer " + callerKey}
	for i := 0; i < 2; i++ {
		resp := post(t, url, hdr, `{"model":"gpt-4o-mini"}`)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Ratelimit-Limit") != "2" {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, resp.Header)
		}
	}
	resp := post(t, url, hdr, `{"model":"gpt-4o-mini"}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Ratelimit-Remaining") != "0" || !strings.Contains(string(b), "rpm_limit") {
		t.Fatalf("rate limited: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	// The quota is separate: lift the RPM limit, the monthly cap (3) trips.
	f.key.RPMLimit = 0
	resp = post(t, url, hdr, `{"model":"gpt-4o-mini"}`)
	resp.Body.Close()
	resp = post(t, url, hdr, `{"model":"gpt-4o-mini"}`)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), "monthly request quota") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("quota: %d %s", resp.StatusCode, b)
	}
}

func TestUpstreamFailures(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond)
	}), func(o *proxy.Options, _ *keys.Key, _ *platform.Tenant) { o.HeaderTimeout = 100 * time.Millisecond })
	resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"X-Api-Key": callerKey}, `{}`)
	resp.Body.Close()
	if resp.StatusCode != 504 {
		t.Fatalf("header timeout: %d", resp.StatusCode)
	}
	down := newFixture(t, http.NotFoundHandler(), func(o *proxy.Options, _ *keys.Key, _ *platform.Tenant) {
		o.Providers = testProviders(t, map[string]string{"UPSTREAM_OPENAI_URL": "http://127.0.0.1:1/v1"})
	})
	resp = post(t, down.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"X-Api-Key": callerKey}, `{}`)
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Fatalf("unreachable: %d", resp.StatusCode)
	}
	if ev := down.evs.wait(t); ev.StatusCode != 502 || ev.Outcome != usage.OutcomeError {
		t.Fatalf("event: %+v", ev)
	}
}

// TestClientDisconnectCancelsUpstream: the upstream sees its request cancelled
// within a second of the client going away mid-stream.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	cancelled := make(chan time.Time, 1)
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := 0; ; i++ {
			_, _ = io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"x"}}]}`+"\n\n")
			fl.Flush()
			select {
			case <-r.Context().Done():
				cancelled <- time.Now()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", f.gw.URL+"/trueportai-services/openai/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	left := time.Now()
	cancel()
	resp.Body.Close()
	select {
	case at := <-cancelled:
		if d := at.Sub(left); d > time.Second {
			t.Fatalf("upstream cancelled after %s", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("upstream never cancelled")
	}
	if ev := f.evs.wait(t); ev.Outcome != usage.OutcomeClientClosed || !ev.Stream {
		t.Fatalf("event: %+v", ev)
	}
}

// TestStreamCutShort: a stream that dies midway still yields a usage event
// with what was seen and a status saying why.
func TestStreamCutShort(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":42,\"output_tokens\":1}}}\n\n")
		_, _ = io.WriteString(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n")
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}), nil)
	resp := post(t, f.gw.URL+"/trueportai-services/anthropic/v1/messages", map[string]string{"X-Api-Key": callerKey, "anthropic-version": "2023-06-01"}, `{"model":"claude-sonnet-4-5","stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "message_start") || !strings.Contains(string(b), "par") {
		t.Fatalf("client did not get the events seen: %q", b)
	}
	ev := f.evs.wait(t)
	if ev.Outcome != usage.OutcomeError || ev.Error == "" || ev.PromptTokens == nil || *ev.PromptTokens != 42 {
		t.Fatalf("event: %+v (prompt %v)", ev, ev.PromptTokens)
	}
}

// TestIdleStreamEnds: an upstream that goes silent mid-stream is cut after
// the idle timeout instead of holding the connection forever.
func TestIdleStreamEnds(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}), func(o *proxy.Options, _ *keys.Key, _ *platform.Tenant) { o.IdleTimeout = 200 * time.Millisecond })
	start := time.Now()
	resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"X-Api-Key": callerKey}, `{"model":"gpt-4o-mini","stream":true}`)
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle stream held for %s", d)
	}
	if ev := f.evs.wait(t); ev.Outcome != usage.OutcomeError || !strings.Contains(ev.Error, "idle") {
		t.Fatalf("event: %+v", ev)
	}
}

func TestBodiesLoggedOnlyWhenAsked(t *testing.T) {
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatJSON)
	})
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"mail me at a@b.example"}]}`
	off := newFixture(t, upstream, nil)
	resp := post(t, off.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"X-Api-Key": callerKey}, body)
	resp.Body.Close()
	if ev := off.evs.wait(t); ev.RequestBody != nil || ev.ResponseBody != nil {
		t.Fatal("bodies logged although storage settings say no")
	}
	on := newFixture(t, upstream, func(o *proxy.Options, _ *keys.Key, tn *platform.Tenant) {
		tn.LogRequestBodies, tn.LogResponseBodies, tn.RedactLoggedBodies = true, true, true
		o.RedactBody = func(_ provider.Provider, _ string, b []byte) []byte {
			return []byte(strings.ReplaceAll(string(b), "a@b.example", "[REDACTED:EMAIL]"))
		}
	})
	resp = post(t, on.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"X-Api-Key": callerKey}, body)
	resp.Body.Close()
	ev := on.evs.wait(t)
	if ev.RequestBody == nil || !strings.Contains(*ev.RequestBody, "[REDACTED:EMAIL]") || strings.Contains(*ev.RequestBody, "a@b.example") {
		t.Fatalf("request body: %v", ev.RequestBody)
	}
	if ev.ResponseBody == nil || *ev.ResponseBody != chatJSON {
		t.Fatalf("response body: %v", ev.ResponseBody)
	}
}

type fixedRules struct{ set *policy.Set }

func (f fixedRules) Get(string, string) *policy.Set { return f.set }

func TestResponseRules(t *testing.T) {
	set, err := policy.Compile([]policy.Rule{
		{ID: "11111111-1111-1111-1111-111111111111", Name: "no leaked emails", Type: "pii", Config: []byte(`{"kinds":["email"]}`), Action: "redact", Enabled: true, Direction: "response"},
		{ID: "22222222-2222-2222-2222-222222222222", Name: "no codenames", Type: "keyword", Config: []byte(`{"keywords":["bluebird"]}`), Action: "block", Enabled: true, Direction: "response"},
	})
	if err != nil {
		t.Fatal(err)
	}
	answer := "contact ops@corp.example"
	streamed := []string{"project blue", "bird"}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "event-stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, s := range streamed {
				_, _ = io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"`+s+`"}}]}`+"\n\n")
				w.(http.Flusher).Flush()
			}
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"`+answer+`"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	})
	f := newFixture(t, upstream, func(o *proxy.Options, _ *keys.Key, _ *platform.Tenant) { o.Policies = fixedRules{set} })
	url := f.gw.URL + "/trueportai-services/openai/v1/chat/completions"

	resp := post(t, url, map[string]string{"X-Api-Key": callerKey}, `{"model":"gpt-4o-mini"}`)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(b), "ops@corp.example") || !strings.Contains(string(b), "[REDACTED:EMAIL]") {
		t.Fatalf("JSON response not redacted: %d %s", resp.StatusCode, b)
	}
	if ev := f.evs.wait(t); ev.Outcome != usage.OutcomeRedacted || len(ev.Violations) != 1 || ev.TotalTokens == nil || *ev.TotalTokens != 3 {
		t.Fatalf("event: %+v", ev)
	}

	answer = "bluebird launches friday"
	resp = post(t, url, map[string]string{"X-Api-Key": callerKey}, `{"model":"gpt-4o-mini"}`)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || strings.Contains(string(b), "friday") || !strings.Contains(string(b), "policy_violation") {
		t.Fatalf("JSON response not blocked: %d %s", resp.StatusCode, b)
	}
	if ev := f.evs.wait(t); ev.Outcome != usage.OutcomeBlocked {
		t.Fatalf("event: %+v", ev)
	}

	// Streams: the block rule ends the stream before the word, with the
	// provider's error event; the redact rule rewrites an address split
	// across events.
	resp = post(t, url, map[string]string{"X-Api-Key": callerKey, "Accept": "text/event-stream"}, `{"model":"gpt-4o-mini","stream":true}`)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "bluebird") || !strings.Contains(string(b), `"code":"policy_violation"`) {
		t.Fatalf("stream not blocked: %s", b)
	}
	ev := f.evs.wait(t)
	if ev.Outcome != usage.OutcomeBlocked || len(ev.Violations) != 1 || ev.Violations[0].Action != "block" {
		t.Fatalf("stream event: %+v", ev)
	}
	streamed = []string{"write to ops@co", "rp.example today"}
	resp = post(t, url, map[string]string{"X-Api-Key": callerKey, "Accept": "text/event-stream"}, `{"model":"gpt-4o-mini","stream":true}`)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "ops@") || strings.Contains(string(b), "rp.example") || !strings.Contains(string(b), "[REDACTED:EMAIL]") {
		t.Fatalf("stream not redacted: %s", b)
	}
	if ev := f.evs.wait(t); ev.Outcome != usage.OutcomeRedacted || len(ev.Violations) != 1 || ev.Violations[0].Action != "redact" {
		t.Fatalf("stream event: %+v", ev)
	}
}

// testProviders builds the provider registry from upstream variables.
func testProviders(t testing.TB, env map[string]string) *provider.Registry {
	t.Helper()
	r, err := registry.New(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUnlistedHeadersNotForwarded: only the headers the provider lists reach
// the upstream; anything else a client sends stays at the gateway.
func TestUnlistedHeadersNotForwarded(t *testing.T) {
	var seen http.Header
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatJSON)
	}), nil)
	resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{
		"X-Api-Key": callerKey, "OpenAI-Beta": "assistants=v2", "X-Amz-Date": "20261206T000000Z", "X-Internal-Route": "admin",
		"X-Stainless-Arch": "x64", "Anthropic-Version": "2023-06-01", "Proxy-Connection": "keep-alive", "Via": "1.1 evil",
		"True-Client-Ip": "10.0.0.1", "X-Client-Ip": "10.0.0.1", "Xi-Api-Key": "sk-other",
	}, `{"model":"gpt-4o-mini","messages":[]}`)
	resp.Body.Close()
	if seen.Get("Openai-Beta") != "assistants=v2" || seen.Get("Content-Type") == "" {
		t.Fatalf("listed headers not forwarded: %v", seen)
	}
	for _, h := range []string{"X-Amz-Date", "X-Internal-Route", "X-Stainless-Arch", "Anthropic-Version", "Proxy-Connection", "Via", "True-Client-Ip", "X-Client-Ip", "Xi-Api-Key"} {
		if seen.Get(h) != "" {
			t.Errorf("upstream received %s", h)
		}
	}
}

// TestKeyRPMFollowsPlanMaximum: a key's RPM is its own, at most its plan's
// maximum (an override lowering it clamps the key at once); rpm_limit null
// (0) follows the maximum, and a plan without one leaves the key unlimited.
func TestKeyRPMFollowsPlanMaximum(t *testing.T) {
	for _, c := range []struct {
		name      string
		key, max  int
		wantLimit string
	}{
		{"own limit under the maximum", 20, 600, "20"},
		{"above the maximum: clamped", 1000, 600, "600"},
		{"null follows the maximum", 0, 600, "600"},
		{"own limit, plan without maximum", 20000, 0, "20000"},
		{"null, plan without maximum: unlimited", 0, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, chatJSON)
			}), func(o *proxy.Options, k *keys.Key, tn *platform.Tenant) {
				k.RPMLimit, tn.MaxRPMPerKey = c.key, int64(c.max)
			})
			resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"Authorization": "Bearer " + callerKey}, `{"model":"gpt-4o-mini"}`)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Ratelimit-Limit") != c.wantLimit {
				t.Fatalf("status %d, X-Ratelimit-Limit %q, want 200 and %q", resp.StatusCode, resp.Header.Get("X-Ratelimit-Limit"), c.wantLimit)
			}
		})
	}
}
