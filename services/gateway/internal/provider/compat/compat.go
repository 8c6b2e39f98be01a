// Package compat is any upstream that speaks the OpenAI API (vLLM, Ollama,
// Groq, Together, DeepSeek, Mistral, Fireworks, ...), named by the tenant:
// /trueportai-services/compat/{name}/v1/{path} goes to the tenant's
// providers.compat.{name}.base_url with its providers.compat.{name}.api_key
// (optional: a self-hosted server may need none). Requests, streams,
// metering and errors are OpenAI's (openai.Format).
package compat

import (
	"net/http"
	"regexp"
	"strings"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/openai"
)

// nameRE is an upstream's name: what the tenant chose in its config keys.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Provider routes to the tenant's OpenAI-compatible upstreams.
type Provider struct{ openai.Format }

// FromEnv returns the provider; it has no operator setting (every upstream
// is the tenant's).
func FromEnv(func(string) string) (provider.Provider, error) { return New(), nil }

// New returns the provider.
func New() *Provider { return &Provider{} }

// Name implements provider.Provider.
func (*Provider) Name() string { return "compat" }

// Prefix implements provider.Provider.
func (*Provider) Prefix() string { return provider.RoutePrefix + "compat/" }

// Route accepts {name}/v1/{path}.
func (p *Provider) Route(rest string) (provider.Target, error) {
	var t provider.Target
	name, after, ok := strings.Cut(rest, "/")
	if !ok || !nameRE.MatchString(name) {
		return t, provider.ErrBadPath
	}
	sub, ok := strings.CutPrefix(after, "v1/")
	if !ok {
		return t, provider.ErrBadPath
	}
	if err := provider.CheckRest(sub); err != nil {
		return t, err
	}
	t.Rest, t.Path, t.Resource, t.Credential = sub, "/"+rest, name, "compat."+name
	return t, nil
}

// MissingCredential requires the upstream's base URL.
func (*Provider) MissingCredential(t *provider.Target, c provider.Credential) string {
	if c.BaseURL == "" {
		return "providers.compat." + t.Resource + ".base_url"
	}
	return ""
}

// URL joins the tenant's base URL (which ends where the OpenAI API's /v1
// does, e.g. https://api.groq.com/openai/v1) and the path.
func (*Provider) URL(t *provider.Target, c provider.Credential, rawQuery string) (string, bool, error) {
	dest, err := provider.JoinURL(c.BaseURL, t.Rest, rawQuery)
	return dest, true, err
}

// Authorize sends the key as a bearer token, when there is one.
func (*Provider) Authorize(r *http.Request, c provider.Credential, _ []byte) error {
	if c.APIKey != "" {
		r.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	return nil
}
