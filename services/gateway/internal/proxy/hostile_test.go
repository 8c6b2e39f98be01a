package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/proxy"
	"trueportai/services/internal/egress"
)

// hits counts the requests an upstream received.
func hits(body string) (http.Handler, *atomic.Int32) {
	var n atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}), &n
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s := string(b)
	i := strings.Index(s, `"code":"`)
	if i < 0 {
		return s
	}
	s = s[i+len(`"code":"`):]
	return s[:strings.IndexByte(s, '"')]
}

// TestTenantBaseURLEgress: a tenant's base URL pointing at loopback, a
// private network or the metadata endpoint is refused when dialled (403 in
// the provider's shape, nothing sent), whatever its spelling; the operator
// allowlist and APP_ENV=dev's loopback open what they name.
func TestTenantBaseURLEgress(t *testing.T) {
	internal, n := hits(chatJSON)
	srv := httptest.NewServer(internal)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	for _, tc := range []struct {
		base    string
		policy  *egress.Policy
		allowed bool
	}{
		{srv.URL + "/v1", nil, false},
		{"http://localhost:" + port + "/v1", nil, false},          // a name resolving to loopback
		{"http://[::ffff:127.0.0.1]:" + port + "/v1", nil, false}, // v4-mapped
		{"http://169.254.169.254/latest/meta-data", nil, false},   // metadata, never dialled
		{"http://169.254.169.254/latest", &egress.Policy{AllowLoopback: true}, false},
		{srv.URL + "/v1", &egress.Policy{RequireHTTPS: true, AllowLoopback: true}, false}, // prod: https only
		{srv.URL + "/v1", &egress.Policy{AllowLoopback: true}, true},                      // dev
		{"http://localhost:" + port + "/v1", &egress.Policy{AllowHosts: []string{"localhost"}}, true},
	} {
		before := n.Load()
		f := newFixture(t, http.NotFoundHandler(), func(o *proxy.Options, _ *keys.Key, tn *platform.Tenant) {
			o.Egress = tc.policy
			tn.Providers["openai"] = provider.Credential{APIKey: "sk-up", BaseURL: tc.base}
		})
		resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"X-Api-Key": callerKey}, `{"model":"gpt-4o-mini","messages":[]}`)
		code := errorCode(t, resp)
		if tc.allowed {
			if resp.StatusCode != 200 || n.Load() != before+1 {
				t.Errorf("%s: status %d (%s), upstream hits %d", tc.base, resp.StatusCode, code, n.Load()-before)
			}
			continue
		}
		if resp.StatusCode != http.StatusForbidden || code != "upstream_not_allowed" || n.Load() != before {
			t.Errorf("%s: status %d code %q, upstream hits %d; want 403 upstream_not_allowed, none", tc.base, resp.StatusCode, code, n.Load()-before)
		}
	}
}

// TestOperatorUpstreamTrusted: the operator's own UPSTREAM_* URLs (loopback
// here) are not subject to the tenant egress policy.
func TestOperatorUpstreamTrusted(t *testing.T) {
	up, n := hits(chatJSON)
	f := newFixture(t, up, nil)
	resp := post(t, f.gw.URL+"/trueportai-services/openai/v1/chat/completions", map[string]string{"X-Api-Key": callerKey}, `{"model":"gpt-4o-mini","messages":[]}`)
	resp.Body.Close()
	if resp.StatusCode != 200 || n.Load() != 1 {
		t.Fatalf("status %d, hits %d", resp.StatusCode, n.Load())
	}
}

// TestModelUndeterminedWithAllowlist: with a model allowlist, a request
// whose model cannot be read (multipart, a batch file, a GET on a
// model-specific path, non-JSON) is refused; the model list passes.
func TestModelUndeterminedWithAllowlist(t *testing.T) {
	up, n := hits(`{"object":"list","data":[]}`)
	f := newFixture(t, up, func(_ *proxy.Options, k *keys.Key, _ *platform.Tenant) { k.AllowedModels = []string{"gpt-4o-mini"} })
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"POST", "audio/transcriptions", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--x--\r\n", 403},
		{"POST", "batches", "application/json", `{"input_file_id":"file-1","endpoint":"/v1/chat/completions"}`, 403},
		{"POST", "chat/completions", "text/plain", `not json`, 403},
		{"GET", "models/gpt-4o", "", "", 403},
		{"GET", "models/gpt-4o-mini", "", "", 200},
		{"GET", "models", "", "", 200},
		{"POST", "chat/completions", "application/json", `{"model":"gpt-4o-mini","messages":[]}`, 200},
		{"POST", "chat/completions", "application/json", `{"model":"gpt-4o","messages":[]}`, 403},
	} {
		before := n.Load()
		req, _ := http.NewRequest(tc.method, f.gw.URL+"/trueportai-services/openai/v1/"+tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		req.Header.Set("Authorization", "Bearer "+callerKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		code := errorCode(t, resp)
		if resp.StatusCode != tc.want || (tc.want == 403) != (n.Load() == before) {
			t.Errorf("%s %s: status %d (%s), upstream hits %d; want %d", tc.method, tc.path, resp.StatusCode, code, n.Load()-before, tc.want)
		}
	}
}

// TestAzurePinnedResources: the tenant's key goes only to the resources it
// pinned; another resource is a 403 in Azure's (OpenAI's) shape.
func TestAzurePinnedResources(t *testing.T) {
	up, n := hits(chatJSON)
	f := newFixture(t, up, func(_ *proxy.Options, _ *keys.Key, tn *platform.Tenant) {
		tn.Providers["azure"] = provider.Credential{APIKey: "azure-key", Resources: []string{"acme"}}
	})
	resp := post(t, f.gw.URL+"/trueportai-services/azure/attacker/gpt4o/chat/completions?api-version=2024-10-21", map[string]string{"Api-Key": callerKey}, `{"messages":[]}`)
	if code := errorCode(t, resp); resp.StatusCode != 403 || code != "resource_not_allowed" || n.Load() != 0 {
		t.Fatalf("other resource: %d %q, hits %d", resp.StatusCode, code, n.Load())
	}
	resp = post(t, f.gw.URL+"/trueportai-services/azure/acme/gpt4o/chat/completions?api-version=2024-10-21", map[string]string{"Api-Key": callerKey}, `{"messages":[]}`)
	resp.Body.Close()
	if resp.StatusCode != 200 || n.Load() != 1 {
		t.Fatalf("pinned resource: %d, hits %d", resp.StatusCode, n.Load())
	}
}

// TestQueryKeyAnyEncoding: the caller key in ?key= is recognised by its
// decoded name and never forwarded, whatever its encoding; two of them are
// ambiguous and authenticate nothing.
func TestQueryKeyAnyEncoding(t *testing.T) {
	var got atomic.Value
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"candidates":[]}`)
	}), nil)
	base := f.gw.URL + "/trueportai-services/google/v1beta/models/gemini-2.5-flash:generateContent?alt=json&"
	for _, q := range []string{"key=" + callerKey, "ke%79=" + callerKey, "%6B%65%79=" + callerKey} {
		got.Store("")
		resp := post(t, base+q, nil, `{"contents":[]}`)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", q, resp.StatusCode)
		}
		if fwd := got.Load().(string); strings.Contains(fwd, callerKey) || fwd != "alt=json" {
			t.Fatalf("%s: upstream query %q", q, fwd)
		}
	}
	resp := post(t, base+"key="+callerKey+"&ke%79="+callerKey, nil, `{"contents":[]}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("two key parameters: status %d", resp.StatusCode)
	}
}

// TestOverloadBounds: above the replica's bounds on requests in flight and
// buffered request bytes, requests get a fast 503 in the provider's shape
// with Retry-After, and the bounds free up again.
func TestOverloadBounds(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int32
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatJSON)
	}), func(o *proxy.Options, _ *keys.Key, _ *platform.Tenant) { o.MaxConcurrent, o.MaxBufferedBytes = 1, 1024 })
	url := f.gw.URL + "/trueportai-services/openai/v1/chat/completions"
	body := `{"model":"gpt-4o-mini","messages":[]}`
	done := make(chan int)
	go func() {
		resp := post(t, url, map[string]string{"X-Api-Key": callerKey}, body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for entered.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	resp := post(t, url, map[string]string{"X-Api-Key": callerKey}, body)
	if code := errorCode(t, resp); resp.StatusCode != 503 || code != "overloaded" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second request in flight: %d %q Retry-After %q", resp.StatusCode, code, resp.Header.Get("Retry-After"))
	}
	close(release)
	if st := <-done; st != 200 {
		t.Fatalf("first request: %d", st)
	}
	big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 4096) + `"}]}`
	resp = post(t, url, map[string]string{"X-Api-Key": callerKey}, big)
	if code := errorCode(t, resp); resp.StatusCode != 503 || code != "overloaded" {
		t.Fatalf("body over the byte bound: %d %q", resp.StatusCode, code)
	}
	resp = post(t, url, map[string]string{"X-Api-Key": callerKey}, body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bounds not released: %d", resp.StatusCode)
	}
}
