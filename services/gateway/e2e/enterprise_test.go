package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// proxiedLimit sends one request and returns its status and the key's
// X-Ratelimit-Limit ("" when the key has no limit).
func proxiedLimit(t *testing.T, gateway, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", gateway+"/trueportai-services/openai/v1/chat/completions",
		stringsReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-key", key)
	resp, err := proxyClient.Do(req)
	if err != nil {
		t.Fatalf("proxied: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Ratelimit-Limit")
}

// TestEnterpriseLimitsReachGateway: a platform admin lifts one tenant's RPM
// maximum (override null = none); its key with rpm_limit null follows the
// plan's maximum, so it becomes unlimited, and keys above the former
// maximum can be created; another tenant keeps its plan's maximum. A lower
// override clamps existing keys at once.
func TestEnterpriseLimitsReachGateway(t *testing.T) {
	t.Parallel()
	rootSlug := "ops-" + randHex(3)
	s := newStack(t, "PLATFORM_ADMIN_EMAILS="+rootSlug+"@example.com")
	a := s.setupTenant("deal-a-" + randHex(3))
	b := s.setupTenant("deal-b-" + randHex(3))
	rootToken := s.platformAdmin(rootSlug + "@example.com") // only a proven address is admin
	p := s.platformURL + "/platform/api"
	keys := s.gatewayURL + "/trueportai-services/api/v1/keys"

	var k struct {
		ID       string `json:"id"`
		Key      string `json:"key"`
		RPMLimit *int   `json:"rpm_limit"`
	}
	if c := call(t, "POST", keys, a.scopedToken, map[string]any{"name": "plan max", "rpm_limit": nil}, &k); c != 201 || k.RPMLimit != nil {
		t.Fatalf("create with rpm_limit null: %d, rpm_limit %v", c, k.RPMLimit)
	}
	if c, lim := proxiedLimit(t, s.gatewayURL, k.Key); c != 200 || lim != "60" {
		t.Fatalf("free plan: %d, X-Ratelimit-Limit %q, want 60 (the plan's maximum)", c, lim)
	}
	for _, tok := range []string{a.scopedToken, b.scopedToken} {
		var e struct {
			Error struct {
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		if c := call(t, "POST", keys, tok, map[string]any{"name": "fast", "rpm_limit": 20000}, &e); c != 400 || e.Error.Details["field"] != "rpm_limit" {
			t.Fatalf("20000 RPM on the free plan: %d %v", c, e.Error.Details)
		}
	}
	if c := call(t, "POST", keys, a.scopedToken, map[string]any{"name": "bad", "rpm_limit": "fast"}, nil); c != 400 {
		t.Fatalf("rpm_limit \"fast\": %d", c)
	}

	// The deal: no RPM maximum for tenant A.
	if c := call(t, "PUT", p+"/admin/tenants/"+a.tenantID+"/limits", rootToken, map[string]any{"max_rpm_per_key": nil}, nil); c != 200 {
		t.Fatalf("override: %d", c)
	}
	eventually(t, 10*time.Second, func() error {
		if c, lim := proxiedLimit(t, s.gatewayURL, k.Key); c != 200 || lim != "" {
			return fmt.Errorf("status %d, X-Ratelimit-Limit %q: want no limit", c, lim)
		}
		return nil
	})
	var fast struct {
		Key      string `json:"key"`
		RPMLimit *int   `json:"rpm_limit"`
	}
	if c := call(t, "POST", keys, a.scopedToken, map[string]any{"name": "fast", "rpm_limit": 20000}, &fast); c != 201 || fast.RPMLimit == nil || *fast.RPMLimit != 20000 {
		t.Fatalf("20000 RPM under the deal: %d %v", c, fast.RPMLimit)
	}
	if c, lim := proxiedLimit(t, s.gatewayURL, fast.Key); c != 200 || lim != "20000" {
		t.Fatalf("20000 RPM key: %d, %q", c, lim)
	}
	// Tenant B is untouched.
	if c := call(t, "POST", keys, b.scopedToken, map[string]any{"name": "fast", "rpm_limit": 20000}, nil); c != 400 {
		t.Fatalf("tenant B got tenant A's deal: %d", c)
	}
	if c, lim := proxiedLimit(t, s.gatewayURL, b.apiKey); c != 200 || lim != "60" {
		t.Fatalf("tenant B: %d %q", c, lim)
	}

	// A lower maximum clamps existing keys.
	if c := call(t, "PUT", p+"/admin/tenants/"+a.tenantID+"/limits", rootToken, map[string]any{"max_rpm_per_key": 100}, nil); c != 200 {
		t.Fatalf("override: %d", c)
	}
	eventually(t, 10*time.Second, func() error {
		for _, key := range []string{k.Key, fast.Key} {
			if c, lim := proxiedLimit(t, s.gatewayURL, key); c != 200 || lim != "100" {
				return fmt.Errorf("status %d, X-Ratelimit-Limit %q: want 100", c, lim)
			}
		}
		return nil
	})
	// rpm_limit null on PATCH: back to following the plan's maximum.
	if c := call(t, "PATCH", keys+"/"+a.keyID, a.scopedToken, map[string]any{"rpm_limit": nil}, &k); c != 200 || k.RPMLimit != nil {
		t.Fatalf("patch rpm_limit null: %d %v", c, k.RPMLimit)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
