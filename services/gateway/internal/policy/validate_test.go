package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidateFieldErrors(t *testing.T) {
	ok := func() Rule {
		return Rule{Name: "r", Type: TypeKeyword, Action: ActionBlock, Config: json.RawMessage(`{"keywords":["x"]}`)}
	}
	with := func(f func(*Rule)) Rule { r := ok(); f(&r); return r }
	cfg := func(typ, c string) Rule {
		return with(func(r *Rule) { r.Type, r.Config = typ, json.RawMessage(c) })
	}
	cases := []struct {
		name  string
		r     Rule
		field string
	}{
		{"missing name", with(func(r *Rule) { r.Name = " " }), "name"},
		{"long name", with(func(r *Rule) { r.Name = strings.Repeat("n", 201) }), "name"},
		{"missing type", with(func(r *Rule) { r.Type = "" }), "type"},
		{"unknown type", with(func(r *Rule) { r.Type = "profanity" }), "type"},
		{"missing action", with(func(r *Rule) { r.Action = "" }), "action"},
		{"unknown action", with(func(r *Rule) { r.Action = "quarantine" }), "action"},
		{"redact allowlist", with(func(r *Rule) {
			r.Type, r.Action, r.Config = TypeModelAllowlist, ActionRedact, json.RawMessage(`{"models":["gpt-4o"]}`)
		}), "action"},
		{"redact max_tokens", with(func(r *Rule) {
			r.Type, r.Action, r.Config = TypeMaxTokens, ActionRedact, json.RawMessage(`{"max_output_tokens":5}`)
		}), "action"},
		{"unknown mode", with(func(r *Rule) { r.Mode = "dry-run" }), "mode"},
		{"unknown direction", with(func(r *Rule) { r.Direction = "inbound" }), "direction"},
		{"response allowlist", with(func(r *Rule) {
			r.Type, r.Config, r.Direction = TypeModelAllowlist, json.RawMessage(`{"models":["gpt-4o"]}`), DirectionResponse
		}), "direction"},
		{"bad scope provider", with(func(r *Rule) { r.Scope.Providers = []string{"openai", "cohere"} }), "scope.providers"},
		{"empty scope env", with(func(r *Rule) { r.Scope.Envs = []string{""} }), "scope.envs"},
		{"empty scope key", with(func(r *Rule) { r.Scope.KeyIDs = []string{""} }), "scope.key_ids"},
		{"empty scope model", with(func(r *Rule) { r.Scope.Models = []string{" "} }), "scope.models"},
		{"config not object", cfg(TypeKeyword, `["x"]`), "config"},
		{"config bad json", cfg(TypeKeyword, `{"keywords":`), "config"},
		{"empty keyword list", cfg(TypeKeyword, `{"keywords":[]}`), "config.keywords"},
		{"missing keywords", cfg(TypeKeyword, `{}`), "config.keywords"},
		{"blank keyword", cfg(TypeKeyword, `{"keywords":["a","  "]}`), "config.keywords"},
		{"long keyword", cfg(TypeKeyword, `{"keywords":["`+strings.Repeat("k", 257)+`"]}`), "config.keywords"},
		{"keywords wrong type", cfg(TypeKeyword, `{"keywords":"abc"}`), "config.keywords"},
		{"case_sensitive wrong type", cfg(TypeKeyword, `{"keywords":["a"],"case_sensitive":"yes"}`), "config.case_sensitive"},
		{"bad regex", cfg(TypeRegex, `{"pattern":"(unclosed"}`), "config.pattern"},
		{"perl regex", cfg(TypeRegex, `{"pattern":"(?<=x)y"}`), "config.pattern"},
		{"long regex", cfg(TypeRegex, `{"pattern":"`+strings.Repeat("a", 1001)+`"}`), "config.pattern"},
		{"empty regex", cfg(TypeRegex, `{"pattern":""}`), "config.pattern"},
		{"regex matching empty", cfg(TypeRegex, `{"pattern":"a*"}`), "config.pattern"},
		{"unknown pii kind", cfg(TypePII, `{"kinds":["email","passport"]}`), "config.kinds"},
		{"secret kind in pii", cfg(TypePII, `{"kinds":["jwt"]}`), "config.kinds"},
		{"unknown secret kind", cfg(TypeSecrets, `{"kinds":["password"]}`), "config.kinds"},
		{"threshold zero", cfg(TypePromptInjection, `{"threshold":0}`), "config.threshold"},
		{"threshold above one", cfg(TypePromptInjection, `{"threshold":1.5}`), "config.threshold"},
		{"threshold string", cfg(TypePromptInjection, `{"threshold":"high"}`), "config.threshold"},
		{"empty allowlist", cfg(TypeModelAllowlist, `{"models":[]}`), "config.models"},
		{"blank allowlist model", cfg(TypeModelAllowlist, `{"models":[""]}`), "config.models"},
		{"max_tokens nothing", cfg(TypeMaxTokens, `{}`), "config"},
		{"max_tokens negative", cfg(TypeMaxTokens, `{"max_output_tokens":-1}`), "config.max_output_tokens"},
		{"max_prompt_chars zero", cfg(TypeMaxTokens, `{"max_prompt_chars":0}`), "config.max_prompt_chars"},
		{"max_tokens fraction", cfg(TypeMaxTokens, `{"max_output_tokens":1.5}`), "config.max_output_tokens"},
	}
	for _, c := range cases {
		err := Validate(c.r, testProviders)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want FieldError on %s", c.name, err, c.field)
			continue
		}
		if fe.Field != c.field {
			t.Errorf("%s: field %q (%v), want %q", c.name, fe.Field, fe, c.field)
		}
		if !strings.HasPrefix(fe.Error(), c.field+": ") || fe.Message == "" {
			t.Errorf("%s: message %q", c.name, fe.Error())
		}
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, r := range []Rule{
		rule("a", TypePII, ActionRedact, nil),
		rule("b", TypePII, ActionFlag, map[string]any{"kinds": PIIKinds()}),
		rule("c", TypeSecrets, ActionBlock, map[string]any{"kinds": SecretKinds()}),
		rule("d", TypePromptInjection, ActionBlock, nil),
		rule("e", TypeKeyword, ActionRedact, map[string]any{"keywords": []string{"Straße", "c++"}, "whole_word": true}),
		rule("f", TypeRegex, ActionRedact, map[string]any{"pattern": `(?i)acme-\d+`}),
		rule("g", TypeModelAllowlist, ActionBlock, map[string]any{"models": []string{"gpt-4o*", "models/gemini-2.5-*"}}),
		rule("h", TypeMaxTokens, ActionFlag, map[string]any{"max_prompt_chars": 100}),
		{Name: "i", Type: TypeMaxTokens, Action: ActionBlock, Direction: DirectionBoth, Mode: ModeShadow, Config: json.RawMessage(`{"max_output_tokens":10}`),
			Scope: Scope{Envs: []string{"prod"}, Providers: []string{"openai", "anthropic", "google", "azure"}, Models: []string{"gpt-*"}, KeyIDs: []string{"k"}}},
		{Name: "j", Type: TypeSecrets, Action: ActionFlag, Config: json.RawMessage(`null`)},
		{Name: "k", Type: TypeSecrets, Action: ActionFlag, Config: json.RawMessage(`{"kinds":null,"unknown_field":1}`)},
	} {
		if err := Validate(r, testProviders); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	bad := Rule{ID: "r2", Name: "bad", Type: TypeRegex, Action: ActionBlock, Enabled: true, Config: json.RawMessage(`{"pattern":"("}`)}
	_, err := Compile([]Rule{rule("ok", TypePII, ActionFlag, nil), bad})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "config.pattern" || !strings.Contains(err.Error(), `"r2"`) {
		t.Fatalf("got %v", err)
	}
	// disabled rules are skipped, even invalid ones
	bad.Enabled = false
	s, err := Compile([]Rule{bad})
	if err != nil || s.Len() != 0 {
		t.Fatalf("got %v %v", s, err)
	}
}
