package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestPoliciesBlockRedactFlag: rules created through the API act on the next
// proxied request: block (nothing sent upstream), redact (the upstream sees
// the placeholder), flag/shadow (forwarded, recorded); violations are listed
// with masked snippets only.
func TestPoliciesBlockRedactFlag(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("policies-" + randHex(3))
	api := s.gatewayURL + "/trueportai-services/api/v1"

	// Validation names the field.
	var bad struct {
		Error struct {
			Code    string         `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	for field, body := range map[string]map[string]any{
		"type":           {"name": "x", "type": "nope", "action": "block", "config": map[string]any{}},
		"action":         {"name": "x", "type": "pii", "action": "explode", "config": map[string]any{"kinds": []string{"email"}}},
		"config.pattern": {"name": "x", "type": "regex", "action": "flag", "config": map[string]any{"pattern": "(unclosed"}},
	} {
		bad.Error.Details = nil
		if c := call(t, "POST", api+"/policies", ts.scopedToken, body, &bad); c != 400 || bad.Error.Details["field"] != field {
			t.Errorf("invalid %s: %d %+v", field, c, bad.Error)
		}
	}

	create := func(body map[string]any) string {
		var p struct {
			ID string `json:"id"`
		}
		if c := call(t, "POST", api+"/policies", ts.scopedToken, body, &p); c != 201 {
			t.Fatalf("create policy %v: %d", body["name"], c)
		}
		return p.ID
	}
	create(map[string]any{"name": "no secrets", "type": "secrets", "action": "block", "config": map[string]any{}, "priority": 10})
	create(map[string]any{"name": "mask emails", "type": "pii", "action": "redact", "config": map[string]any{"kinds": []string{"email"}}})
	create(map[string]any{"name": "watch words", "type": "keyword", "action": "flag", "config": map[string]any{"keywords": []string{"merger"}}})
	create(map[string]any{"name": "trial injection", "type": "keyword", "action": "block", "mode": "shadow", "config": map[string]any{"keywords": []string{"merger"}}})

	client := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(ts.apiKey), option.WithMaxRetries(0))
	ask := func(text string) error {
		_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
		})
		return err
	}
	sent := len(s.upstream.raw)

	// Block: a private key never leaves.
	secret := "AKIAZ7QW3RTY5UIOP2LK"
	err := ask("deploy with key " + secret + " please")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "policy_violation" || !strings.Contains(apiErr.Message, "violation id") {
		t.Fatalf("secret not blocked: %v", err)
	}
	if len(s.upstream.raw) != sent {
		t.Fatal("a blocked request reached the upstream")
	}

	// Redact: the upstream sees the placeholder, not the address.
	s.upstream.mu.Lock()
	s.upstream.bodies = nil
	s.upstream.mu.Unlock()
	if err := ask("write to jane.doe@example.com about the merger"); err != nil {
		t.Fatalf("redacted request failed: %v", err)
	}
	s.upstream.mu.Lock()
	got := strings.Join(s.upstream.bodies, "")
	s.upstream.mu.Unlock()
	if strings.Contains(got, "jane.doe@example.com") || !strings.Contains(got, "[REDACTED:EMAIL]") {
		t.Fatalf("upstream body not redacted: %s", got)
	}

	// Violations: block (1) + redact (1) + flag (1) + shadow block (1).
	var vs struct {
		Items []struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Action  string `json:"action"`
			Shadow  bool   `json:"shadow"`
			Matches []struct {
				Snippet string `json:"snippet"`
			} `json:"matches"`
		} `json:"items"`
		Total int `json:"total"`
	}
	eventually(t, 15*time.Second, func() error {
		call(t, "GET", api+"/analytics/violations", ts.scopedToken, nil, &vs)
		if vs.Total != 4 {
			return errors.New("violations not all recorded yet")
		}
		return nil
	})
	shadow := 0
	for _, v := range vs.Items {
		for _, m := range v.Matches {
			if strings.Contains(m.Snippet, secret) || strings.Contains(m.Snippet, "jane.doe@example.com") {
				t.Fatalf("raw secret stored in a violation: %+v", v)
			}
		}
		if v.Shadow {
			shadow++
		}
	}
	if shadow != 1 {
		t.Fatalf("shadow violations: %d", shadow)
	}
	var one struct {
		ID string `json:"id"`
	}
	if c := call(t, "GET", api+"/analytics/violations/"+vs.Items[0].ID, ts.scopedToken, nil, &one); c != 200 || one.ID != vs.Items[0].ID {
		t.Fatalf("violation detail: %d", c)
	}
	page := s.waitLogs(ts.scopedToken, 2)
	outcomes := map[string]bool{}
	for _, r := range page.Items {
		outcomes[r.Outcome] = true
	}
	if !outcomes["blocked"] || !outcomes["redacted"] {
		t.Fatalf("outcomes: %v", outcomes)
	}
}
