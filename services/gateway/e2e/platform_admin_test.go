package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPlanChangesAndAdminAgainstGateway drives the platform's calls into the
// real gateway's gRPC (key counts for downgrades, usage for admin views) and
// a suspension through NATS to the proxy.
func TestPlanChangesAndAdminAgainstGateway(t *testing.T) {
	s := newStack(t, "PLATFORM_ADMIN_EMAILS=root@example.com")
	ts := s.setupTenant("plan-shop")
	p := s.platformURL + "/platform/api"
	subs := p + "/service/subscriptions"
	keys := s.gatewayURL + "/trueportai-services/api/v1/keys"

	if c := call(t, "POST", subs, ts.scopedToken, map[string]string{"plan_id": "pro"}, nil); c != http.StatusCreated {
		t.Fatalf("upgrade to pro: %d", c)
	}
	var extra []string
	for i := range 3 {
		var k struct {
			ID string `json:"id"`
		}
		if c := call(t, "POST", keys, ts.scopedToken, map[string]any{"name": fmt.Sprintf("extra-%d", i)}, &k); c != http.StatusCreated {
			t.Fatalf("create key %d: %d", i, c)
		}
		extra = append(extra, k.ID)
	}
	// Four keys: free allows three.
	var refusal struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if c := call(t, "POST", subs, ts.scopedToken, map[string]string{"plan_id": "free"}, &refusal); c != http.StatusConflict ||
		refusal.Error.Code != "plan_limit_exceeded" || !strings.Contains(refusal.Error.Message, "max_api_keys") {
		t.Fatalf("downgrade with 4 keys: %d %+v", c, refusal)
	}
	if c := call(t, "DELETE", keys+"/"+extra[0], ts.scopedToken, nil, nil); c != http.StatusNoContent {
		t.Fatalf("delete key: %d", c)
	}
	if c := call(t, "POST", subs, ts.scopedToken, map[string]string{"plan_id": "free"}, nil); c != http.StatusCreated {
		t.Fatalf("downgrade with 3 keys: %d", c)
	}

	// One proxied request shows up in the admin's usage figures.
	chat := s.gatewayURL + "/trueportai-services/openai/v1/chat/completions"
	body := map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "hi"}}}
	if c := call(t, "POST", chat, ts.apiKey, body, nil); c != http.StatusOK {
		t.Fatalf("chat: %d", c)
	}
	s.waitLogs(ts.scopedToken, 1)
	root := s.platformAdmin("root@example.com")
	eventually(t, 10*time.Second, func() error {
		var list struct {
			Items []struct {
				ID    string `json:"id"`
				Usage *struct {
					Requests int64 `json:"requests"`
				} `json:"usage_this_month"`
			} `json:"items"`
		}
		if c := call(t, "GET", p+"/admin/tenants", root, nil, &list); c != http.StatusOK {
			return fmt.Errorf("admin tenants: %d", c)
		}
		for _, it := range list.Items {
			if it.ID == ts.tenantID && it.Usage != nil && it.Usage.Requests >= 1 {
				return nil
			}
		}
		return fmt.Errorf("tenant usage not reported: %+v", list.Items)
	})
	var stats struct {
		Requests *int64 `json:"requests_this_month"`
	}
	if c := call(t, "GET", p+"/admin/stats", root, nil, &stats); c != http.StatusOK || stats.Requests == nil || *stats.Requests < 1 {
		t.Errorf("admin stats: %d %+v", c, stats)
	}

	// Suspension: the tenant's key and tokens stop working within 5 s, and
	// work again once it is reactivated.
	status := p + "/admin/tenants/" + ts.tenantID + "/status"
	if c := call(t, "PUT", status, root, map[string]string{"status": "suspended"}, nil); c != http.StatusOK {
		t.Fatalf("suspend: %d", c)
	}
	eventually(t, 5*time.Second, func() error {
		if c := call(t, "POST", chat, ts.apiKey, body, nil); c != http.StatusForbidden {
			return fmt.Errorf("proxy with a suspended tenant's key: %d", c)
		}
		if c := call(t, "GET", keys, ts.scopedToken, nil, nil); c == http.StatusOK {
			return fmt.Errorf("management with a suspended tenant's token: %d", c)
		}
		return nil
	})
	if c := call(t, "PUT", status, root, map[string]string{"status": "active"}, nil); c != http.StatusOK {
		t.Fatalf("reactivate: %d", c)
	}
	eventually(t, 5*time.Second, func() error {
		if c := call(t, "POST", chat, ts.apiKey, body, nil); c != http.StatusOK {
			return fmt.Errorf("proxy after reactivation: %d", c)
		}
		return nil
	})
}
