package app

import (
	"net/http"
	"strings"
	"testing"
)

// TestCredentialControlCharacters: a tenant admin cannot store a provider
// credential that would split or corrupt the upstream header it goes into
// (CR, LF, NUL, other controls, invalid UTF-8): 400 naming the key, nothing
// stored.
func TestCredentialControlCharacters(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.newUser(t, "creds@example.com")
	tok := s.scoped(t, u, s.newTenant(t, u, "Creds", "creds").ID)
	for key, val := range map[string]string{
		"providers.openai.api_key":            "sk-live\r\nX-Injected: 1",
		"providers.anthropic.api_key":         "sk-ant-\x00tail",
		"providers.bedrock.secret_access_key": "wJalrXUtn\nFEMI",
		"providers.google.api_key":            "AIza\x7fxyz",
		"providers.compat.groq.api_key":       "gsk_\x1b[31m",
		"providers.bedrock.access_key_id":     "AKIA\tEXAMPLE",
		"providers.azure.api_key":             "key\u2028ok-but-\x01-not",
	} {
		r := s.put(t, "/platform/api/service/configs/"+key, tok, obj{"value": val})
		env := wantError(t, r, http.StatusBadRequest, "invalid_value")
		if !strings.Contains(env.Message, key) || !strings.Contains(env.Message, "control characters") {
			t.Errorf("%s: error should name the key and the reason: %s", key, r.Body)
		}
	}
	// Invalid UTF-8 sent raw.
	raw := []byte(`{"value":"sk-abc` + "\xff\xfe" + `def"}`)
	env := wantError(t, s.do(t, req{Method: http.MethodPut, Path: "/platform/api/service/configs/providers.openai.api_key", Token: tok, Body: raw}), http.StatusBadRequest, "invalid_value")
	if !strings.Contains(env.Message, "providers.openai.api_key") {
		t.Errorf("invalid UTF-8: %s", env.Message)
	}
	if got := listConfigs(t, s, tok)["providers.openai.api_key"]["value"]; got != nil {
		t.Errorf("a refused credential was stored: %v", got)
	}
	// Outer whitespace (a pasted newline) is still trimmed and accepted.
	decode[obj](t, s.put(t, "/platform/api/service/configs/providers.openai.api_key", tok, obj{"value": "sk-clean-credential-1234\r\n"}), http.StatusOK)
}
