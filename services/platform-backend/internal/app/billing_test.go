package app

import (
	"net/http"
	"strings"
	"testing"
)

func (s *server) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSubscriptionsAndDowngrades(t *testing.T) {
	t.Parallel()
	gw := startFakeGateway(t)
	s := startServer(t, "GATEWAY_GRPC_ADDR="+gw.addr)
	changed := s.events(t, "tenant.changed")
	owner := s.newUser(t, "owner@a.example")
	tn := s.newTenant(t, owner, "Acme", "acme")
	tok := s.scoped(t, owner, tn.ID)
	const subs = "/platform/api/service/subscriptions"

	// Upgrade: no key count needed.
	r := s.post(t, subs, tok, obj{"plan_id": "pro"})
	sub := decode[obj](t, r, http.StatusCreated)
	wantKeys(t, "subscription", sub, "id", "plan_id", "status", "started_at")
	wantUUID(t, "subscription id", sub["id"].(string))
	wantRFC3339UTC(t, "started_at", sub["started_at"])
	if sub["plan_id"] != "pro" || sub["status"] != "active" {
		t.Errorf("subscription = %v", sub)
	}
	wantEvent(t, changed, map[string]string{"tenant_id": tn.ID, "reason": "plan"})
	if gw.countCalls.Load() != 0 {
		t.Errorf("an upgrade asked the gateway for the key count")
	}
	if info := decode[obj](t, s.get(t, "/platform/api/service/info", tok), http.StatusOK); info["plan"] != "pro" {
		t.Errorf("plan after upgrade = %v", info["plan"])
	}

	// History: newest first, the previous subscription ended, an invoice per activation.
	hist := wantEnvelope(t, s.get(t, subs, tok))
	if hist.Total != 2 || hist.Items[0]["plan_id"] != "pro" || hist.Items[1]["plan_id"] != "free" {
		t.Fatalf("history = %+v", hist.Items)
	}
	if hist.Items[0]["status"] != "active" || hist.Items[0]["ended_at"] != nil || hist.Items[1]["status"] != "ended" {
		t.Errorf("history statuses = %+v", hist.Items)
	}
	wantRFC3339UTC(t, "ended_at", hist.Items[1]["ended_at"])
	invoice, _ := hist.Items[0]["invoice"].(obj)
	if invoice == nil || invoice["amount_usd"] != 49.0 || invoice["currency"] != "USD" || invoice["status"] != "issued" {
		t.Errorf("invoice of the pro activation = %v", hist.Items[0]["invoice"])
	}
	if hist.Items[1]["invoice"] != nil {
		t.Errorf("the creation subscription has an invoice: %v", hist.Items[1])
	}

	// Input.
	wantField(t, s.post(t, subs, tok, obj{"plan_id": "platinum"}), "plan_id")
	wantField(t, s.post(t, subs, tok, obj{}), "plan_id")
	wantError(t, s.post(t, subs, tok, obj{"plan_id": "pro"}), http.StatusConflict, "already_on_plan")

	// Storage: capped by the plan (pro: 30 days).
	const storage = "/platform/api/service/storage"
	st := decode[obj](t, s.put(t, storage, tok, obj{"retention_days": 30, "log_request_bodies": true, "log_response_bodies": true, "redact_logged_bodies": false}), http.StatusOK)
	wantKeys(t, "storage", st, "log_request_bodies", "log_response_bodies", "redact_logged_bodies", "retention_days")
	if st["retention_days"] != 30.0 || st["redact_logged_bodies"] != false || st["log_response_bodies"] != true {
		t.Errorf("storage = %v", st)
	}
	wantEvent(t, changed, map[string]string{"tenant_id": tn.ID, "reason": "storage"})
	env := wantError(t, s.put(t, storage, tok, obj{"retention_days": 31}), http.StatusBadRequest, "invalid_retention_days")
	if env.Details["field"] != "retention_days" || env.Details["max"] != 30.0 || !strings.Contains(env.Message, "retention_days") {
		t.Errorf("retention error = %+v", env)
	}
	wantField(t, s.put(t, storage, tok, obj{"retention_days": 0}), "retention_days")
	wantField(t, s.put(t, storage, tok, obj{"retention_days": 2.5}), "retention_days")
	wantField(t, s.put(t, storage, tok, obj{"log_request_bodies": "yes"}), "log_request_bodies")
	wantNoEvent(t, changed)
	// Partial update keeps the other fields.
	st = decode[obj](t, s.put(t, storage, tok, obj{"redact_logged_bodies": true}), http.StatusOK)
	if st["retention_days"] != 30.0 || st["log_request_bodies"] != true || st["redact_logged_bodies"] != true {
		t.Errorf("partial storage update = %v", st)
	}
	wantEvent(t, changed, map[string]string{"tenant_id": tn.ID, "reason": "storage"})
	if got := decode[obj](t, s.get(t, storage, tok), http.StatusOK); got["retention_days"] != 30.0 {
		t.Errorf("GET storage = %v", got)
	}

	// Downgrade refused while the gateway reports more keys than free allows.
	invoicesBefore := s.count(t, `SELECT count(*) FROM invoices`)
	gw.setKeys(tn.ID, 5)
	env = wantError(t, s.post(t, subs, tok, obj{"plan_id": "free"}), http.StatusConflict, "plan_limit_exceeded")
	if !strings.Contains(env.Message, "max_api_keys") || env.Details["plan_id"] != "free" {
		t.Errorf("downgrade refusal should name max_api_keys: %+v", env)
	}
	exceeded, _ := env.Details["exceeded"].([]any)
	if len(exceeded) != 1 || exceeded[0].(map[string]any)["current"] != 5.0 || exceeded[0].(map[string]any)["max"] != 3.0 {
		t.Errorf("exceeded = %v", env.Details["exceeded"])
	}
	// Members over the limit too: both are named.
	for _, e := range []string{"m1@a.example", "m2@a.example", "m3@a.example"} {
		s.addMember(t, tn.ID, s.newUser(t, e).ID, "viewer")
	}
	env = wantError(t, s.post(t, subs, tok, obj{"plan_id": "free"}), http.StatusConflict, "plan_limit_exceeded")
	if !strings.Contains(env.Message, "max_api_keys") || !strings.Contains(env.Message, "max_members") {
		t.Errorf("refusal should name both limits: %s", env.Message)
	}
	// Keys fixed, members still too many.
	gw.setKeys(tn.ID, 3)
	env = wantError(t, s.post(t, subs, tok, obj{"plan_id": "free"}), http.StatusConflict, "plan_limit_exceeded")
	if env.Details["limit"] != "max_members" || strings.Contains(env.Message, "max_api_keys") {
		t.Errorf("refusal should name max_members only: %+v", env)
	}
	if n := s.count(t, `SELECT count(*) FROM invoices`); n != invoicesBefore {
		t.Errorf("refused downgrades recorded %d invoices", n-invoicesBefore)
	}
	if info := decode[obj](t, s.get(t, "/platform/api/service/info", tok), http.StatusOK); info["plan"] != "pro" {
		t.Errorf("plan after refused downgrades = %v", info["plan"])
	}
	wantNoEvent(t, changed)

	// Within the limits: the downgrade goes through and caps retention.
	if _, err := s.db.Exec(t.Context(), `DELETE FROM memberships WHERE tenant_id = $1 AND role = 'viewer'`, tn.ID); err != nil {
		t.Fatal(err)
	}
	decode[obj](t, s.post(t, subs, tok, obj{"plan_id": "free"}), http.StatusCreated)
	wantEvent(t, changed, map[string]string{"tenant_id": tn.ID, "reason": "plan"})
	if got := decode[obj](t, s.get(t, storage, tok), http.StatusOK); got["retention_days"] != 7.0 {
		t.Errorf("retention after the downgrade = %v, want capped to 7", got["retention_days"])
	}
	if hist := wantEnvelope(t, s.get(t, subs, tok)); hist.Total != 3 || hist.Items[0]["plan_id"] != "free" || hist.Items[1]["status"] != "ended" {
		t.Errorf("history after downgrade = %+v", hist.Items)
	}
	if rows := s.auditRows(t, "subscription.activate"); len(rows) != 2 || rows[1]["details"].(map[string]any)["retention_capped"] != true {
		t.Errorf("subscription audit rows = %v", rows)
	}
	if s.count(t, `SELECT count(*) FROM subscriptions WHERE tenant_id = $1 AND status = 'active'`, tn.ID) != 1 {
		t.Errorf("more than one active subscription")
	}
}

func TestDowngradeGatewayDown(t *testing.T) {
	t.Parallel()
	s := startServer(t, "GATEWAY_GRPC_ADDR="+deadAddr(t), "GATEWAY_RPC_TIMEOUT=1s")
	owner := s.newUser(t, "owner@a.example")
	tn := s.newTenant(t, owner, "Acme", "acme")
	tok := s.scoped(t, owner, tn.ID)
	// An upgrade does not depend on the gateway.
	decode[obj](t, s.post(t, "/platform/api/service/subscriptions", tok, obj{"plan_id": "pro"}), http.StatusCreated)
	// A downgrade needs the key count: never allowed blindly.
	r := s.do(t, req{Method: http.MethodPost, Path: "/platform/api/service/subscriptions", Token: tok, Body: obj{"plan_id": "free"}, Want5xx: true})
	wantError(t, r, http.StatusServiceUnavailable, "gateway_unavailable")
	if info := decode[obj](t, s.get(t, "/platform/api/service/info", tok), http.StatusOK); info["plan"] != "pro" {
		t.Errorf("plan = %v after a refused downgrade", info["plan"])
	}
}
