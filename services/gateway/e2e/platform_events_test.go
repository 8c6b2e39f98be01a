package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPlatformChangesReachGateway: suspension by a platform admin stops the
// tenant's keys and tokens within 5 s; storage settings switch body logging
// within 5 s; reactivation restores service.
func TestPlatformChangesReachGateway(t *testing.T) {
	t.Parallel()
	s := newStack(t, "PLATFORM_ADMIN_EMAILS=root@example.com")
	ts := s.setupTenant("events-" + randHex(3))
	raiseRPM(t, s, ts) // the polls below send many requests
	p := s.platformURL + "/platform/api"
	root := s.platformAdmin("root@example.com")
	proxyURL := s.gatewayURL + "/trueportai-services/openai/v1/chat/completions"
	chat := func() int {
		req, _ := http.NewRequest("POST", proxyURL, strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"log me"}]}`))
		req.Header.Set("Authorization", "Bearer "+ts.apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := chat(); c != 200 {
		t.Fatalf("before: %d", c)
	}

	// Storage settings: body logging on within 5 s.
	if c := call(t, "PUT", p+"/service/storage", ts.scopedToken, map[string]any{"log_request_bodies": true, "log_response_bodies": true, "redact_logged_bodies": false, "retention_days": 7}, nil); c != 200 {
		t.Fatalf("storage: %d", c)
	}
	eventually(t, 5*time.Second, func() error {
		if c := chat(); c != 200 {
			return expectStatus(c, 200)
		}
		var page struct {
			Items []struct {
				RequestBody *string `json:"request_body"`
			} `json:"items"`
		}
		call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs?limit=1", ts.scopedToken, nil, &page)
		if len(page.Items) == 0 || page.Items[0].RequestBody == nil || !strings.Contains(*page.Items[0].RequestBody, "log me") {
			return errString("newest log row has no request body yet")
		}
		return nil
	})

	// Suspension: keys refused (403) and management tokens rejected within 5 s.
	if c := call(t, "PUT", p+"/admin/tenants/"+ts.tenantID+"/status", root, map[string]string{"status": "suspended"}, nil); c != 200 {
		t.Fatalf("suspend: %d", c)
	}
	eventually(t, 5*time.Second, func() error { return expectStatus(chat(), 403) })
	eventually(t, 5*time.Second, func() error {
		return expectStatus(call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/keys", ts.scopedToken, nil, nil), 401)
	})

	// Reactivation restores the keys.
	if c := call(t, "PUT", p+"/admin/tenants/"+ts.tenantID+"/status", root, map[string]string{"status": "active"}, nil); c != 200 {
		t.Fatalf("activate: %d", c)
	}
	eventually(t, 5*time.Second, func() error { return expectStatus(chat(), 200) })

	// Global pricing overrides reach the gateway's cost computation.
	if c := call(t, "PUT", p+"/admin/configs/pricing.overrides", root, map[string]any{"value": map[string]any{
		"gpt-4o-mini": map[string]any{"input_per_1m": 1000000, "output_per_1m": 1000000},
	}}, nil); c != 200 {
		t.Fatalf("pricing overrides: %d", c)
	}
	eventually(t, 5*time.Second, func() error {
		if c := chat(); c != 200 {
			return expectStatus(c, 200)
		}
		var page struct {
			Items []struct {
				TotalTokens *int64   `json:"total_tokens"`
				CostUSD     *float64 `json:"cost_usd"`
			} `json:"items"`
		}
		if c := call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs?limit=1", ts.scopedToken, nil, &page); c != 200 {
			return fmt.Errorf("logs: %d", c)
		}
		if len(page.Items) == 0 || page.Items[0].CostUSD == nil || page.Items[0].TotalTokens == nil || *page.Items[0].CostUSD != float64(*page.Items[0].TotalTokens) {
			if len(page.Items) > 0 && page.Items[0].CostUSD != nil && page.Items[0].TotalTokens != nil {
				return fmt.Errorf("newest row costs %v for %d tokens, want the override's price", *page.Items[0].CostUSD, *page.Items[0].TotalTokens)
			}
			return errString("newest row not priced with the override yet")
		}
		return nil
	})

	// A password change revokes the user's tokens on the gateway too (the
	// cached introspection is dropped by the NATS event within 5 s).
	var fresh struct {
		Token string `json:"scoped_access_token"`
	}
	call(t, "POST", p+"/global/auth/select-tenant", ts.globalToken, map[string]string{"tenant_id": ts.tenantID}, &fresh)
	if c := call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/keys", fresh.Token, nil, nil); c != 200 {
		t.Fatalf("fresh token: %d", c)
	}
	if c := call(t, "PUT", p+"/global/auth/password", ts.globalToken, map[string]string{"current_password": "correct-horse-battery", "new_password": "another-horse-battery"}, nil); c != 200 {
		t.Fatalf("change password: %d", c)
	}
	eventually(t, 5*time.Second, func() error {
		return expectStatus(call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/keys", fresh.Token, nil, nil), 401)
	})
}

type errString string

func (e errString) Error() string { return string(e) }
