package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"trueportai/services/internal/money"
)

// member registers a user, adds it to tenantID with role (directly in the
// platform database: invites are a platform feature tested there) and
// returns its scoped token.
func (s *stack) member(tenantID, role string) string {
	t := s.t
	t.Helper()
	email := role + "-" + randHex(4) + "@example.com"
	p := s.platformURL + "/platform/api"
	var reg struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if c := call(t, "POST", p+"/global/auth/register", "", map[string]string{"email": email, "password": "correct-horse-battery"}, &reg); c != 201 {
		t.Fatalf("register %s: %d", role, c)
	}
	execSQL(t, s.envValue("PLATFORM_DATABASE_URL"), `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)`, tenantID, reg.User.ID, role)
	var login struct {
		Token string `json:"global_access_token"`
	}
	call(t, "POST", p+"/global/auth/login", "", map[string]string{"email": email, "password": "correct-horse-battery"}, &login)
	var sel struct {
		Token string `json:"scoped_access_token"`
	}
	if c := call(t, "POST", p+"/global/auth/select-tenant", login.Token, map[string]string{"tenant_id": tenantID}, &sel); c != 200 {
		t.Fatalf("select %s: %d", role, c)
	}
	return sel.Token
}

// TestManagementRoleMatrix: every gateway management route against every
// role, no token, a global token, and another tenant's token.
func TestManagementRoleMatrix(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.setupTenant("matrix-a-" + randHex(3))
	b := s.setupTenant("matrix-b-" + randHex(3))
	tokens := map[string]string{
		"viewer": s.member(a.tenantID, "viewer"),
		"member": s.member(a.tenantID, "member"),
		"admin":  s.member(a.tenantID, "admin"),
		"owner":  a.scopedToken,
		"global": a.globalToken,
		"none":   "",
		"other":  b.scopedToken,
	}
	// One call through the proxy so that a log row exists.
	if code := rawStatus(t, s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", a.apiKey); code == 401 {
		t.Fatalf("proxy call: %d", code)
	}
	g := s.gatewayURL + "/trueportai-services/api/v1"
	type route struct {
		method, path string
		body         any
		min          string // lowest role allowed
		hasID        bool   // other tenant gets 404 (its own list otherwise)
	}
	routes := []route{
		{"GET", "/keys", nil, "member", false},
		{"POST", "/keys", map[string]any{"name": "matrix"}, "admin", false},
		{"PATCH", "/keys/" + a.keyID, map[string]any{"name": "renamed"}, "admin", true},
		{"GET", "/analytics/logs", nil, "member", false},
		{"GET", "/analytics/stats", nil, "member", false},
		{"GET", "/analytics/violations", nil, "member", false},
		{"GET", "/analytics/violations/00000000-0000-0000-0000-000000000001", nil, "member", true},
		{"DELETE", "/keys/" + a.keyID, nil, "admin", true},
	}
	// Policy routes: tenant A's rule for the {id} routes.
	var pol struct {
		ID string `json:"id"`
	}
	polBody := map[string]any{"name": "matrix rule", "type": "keyword", "action": "flag", "config": map[string]any{"keywords": []string{"zebra"}}}
	if c := call(t, "POST", g+"/policies", tokens["owner"], polBody, &pol); c != 201 {
		t.Fatalf("create policy: %d", c)
	}
	routes = append(routes,
		route{"GET", "/policies", nil, "member", false},
		route{"POST", "/policies", polBody, "admin", false},
		route{"GET", "/policies/" + pol.ID, nil, "member", true},
		route{"PUT", "/policies/" + pol.ID, polBody, "admin", true},
		route{"DELETE", "/policies/" + pol.ID, nil, "admin", true},
	)
	rank := map[string]int{"viewer": 1, "member": 2, "admin": 3, "owner": 4}
	for _, r := range routes {
		for _, who := range []string{"viewer", "member", "other", "none", "global", "admin", "owner"} {
			var want int
			switch {
			case who == "none" || who == "global":
				want = 401
			case who == "other":
				want = 200
				if r.hasID {
					want = 404
				} else if r.method == "POST" {
					want = 201
				}
			case rank[who] < rank[r.min]:
				want = 403
			case r.method == "POST":
				want = 201
			case r.method == "DELETE":
				want = 204
			case strings.HasPrefix(r.path, "/analytics/violations/"):
				want = 404
			default:
				want = 200
			}
			if r.method == "DELETE" && who == "owner" {
				want = 404 // the admin just deleted it
			}
			var env struct {
				Error struct {
					Code      string `json:"code"`
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			got := call(t, r.method, g+r.path, tokens[who], r.body, &env)
			if got != want {
				t.Errorf("%s %s as %s: %d, want %d", r.method, r.path, who, got, want)
			}
			if got >= 400 && (env.Error.Code == "" || env.Error.RequestID == "") {
				t.Errorf("%s %s as %s: error envelope missing", r.method, r.path, who)
			}
		}
	}
	// The other tenant's lists never show tenant A's key.
	var keys struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	call(t, "GET", g+"/keys", tokens["other"], nil, &keys)
	for _, k := range keys.Items {
		if k.ID == a.keyID {
			t.Fatal("tenant B listed tenant A's key")
		}
	}
}

// TestStatsFromRollups: stats reflect proxied calls (totals, series, breakdown).
func TestStatsFromRollups(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("stats-" + randHex(3))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"count me"}]}`
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("POST", s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	page := s.waitLogs(ts.scopedToken, 3)
	var wantTokens int64
	for _, r := range page.Items {
		wantTokens += *r.TotalTokens
	}
	var st struct {
		Totals struct {
			Requests    int64       `json:"requests"`
			TotalTokens int64       `json:"total_tokens"`
			CostUSD     json.Number `json:"cost_usd"`
			P95         float64     `json:"p95_latency_ms"`
		} `json:"totals"`
		Series []struct {
			Requests int64   `json:"requests"`
			P95      float64 `json:"p95_latency_ms"`
			Avg      float64 `json:"avg_latency_ms"`
		} `json:"series"`
		Breakdown []struct {
			Key      string `json:"key"`
			Requests int64  `json:"requests"`
		} `json:"breakdown"`
	}
	from := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	url := fmt.Sprintf("%s/trueportai-services/api/v1/analytics/stats?from=%s&interval=hour&group_by=model", s.gatewayURL, from)
	if c := call(t, "GET", url, ts.scopedToken, nil, &st); c != 200 {
		t.Fatalf("stats: %d", c)
	}
	if st.Totals.Requests != 3 || st.Totals.TotalTokens != wantTokens || st.Totals.P95 <= 0 {
		t.Fatalf("totals: %+v (want 3 requests, %d tokens)", st.Totals, wantTokens)
	}
	// Money is exact: every cost is a plain decimal of at most 10 decimals
	// (no binary-float tail, no exponent), and the stats total is exactly
	// the sum of the logged costs.
	var wantCost money.USD
	for _, r := range page.Items {
		c, err := money.Parse(r.CostUSD.String())
		if err != nil || c <= 0 || c.String() != r.CostUSD.String() {
			t.Fatalf("log %s: cost_usd %q is not a plain decimal (%v)", r.RequestID, r.CostUSD, err)
		}
		wantCost += c
	}
	if got, err := money.Parse(st.Totals.CostUSD.String()); err != nil || got != wantCost || got.String() != st.Totals.CostUSD.String() {
		t.Fatalf("stats cost_usd %q, want exactly the logs' sum %s", st.Totals.CostUSD, wantCost)
	}
	if len(st.Breakdown) != 1 || st.Breakdown[0].Key != "gpt-4o-mini" || st.Breakdown[0].Requests != 3 {
		t.Fatalf("breakdown: %+v", st.Breakdown)
	}
	var sum int64
	for _, p := range st.Series {
		sum += p.Requests
		// Each bucket with traffic has its own latency (the console's p95 chart).
		if p.Requests > 0 && (p.P95 <= 0 || p.Avg <= 0) {
			t.Fatalf("series point without latency: %+v", p)
		}
	}
	if sum != 3 {
		t.Fatalf("series: %+v", st.Series)
	}
	// A multi-day range reads whole days from the daily rollups and the edge
	// hours from the hourly ones: the same totals.
	var daily struct {
		Totals struct {
			Requests    int64 `json:"requests"`
			TotalTokens int64 `json:"total_tokens"`
		} `json:"totals"`
	}
	from = time.Now().Add(-75 * time.Hour).UTC().Format(time.RFC3339)
	if c := call(t, "GET", fmt.Sprintf("%s/trueportai-services/api/v1/analytics/stats?from=%s&interval=day", s.gatewayURL, from), ts.scopedToken, nil, &daily); c != 200 ||
		daily.Totals.Requests != 3 || daily.Totals.TotalTokens != wantTokens {
		t.Fatalf("daily stats: %d %+v", c, daily.Totals)
	}
	if c := call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/stats?group_by=nope", ts.scopedToken, nil, nil); c != 400 {
		t.Fatalf("bad group_by: %d", c)
	}
	// Analytics are limited to 60 requests per minute per user and tenant.
	limited := false
	for i := 0; i < 70 && !limited; i++ {
		limited = call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/violations", ts.scopedToken, nil, nil) == 429
	}
	if !limited {
		t.Fatal("analytics never rate limited")
	}
}
