// Package azure is Azure OpenAI: the OpenAI wire format at
// {resource}/{deployment} URLs, authenticated with an api-key header.
package azure

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/openai"
)

// EnvTemplate names the operator's URL template variable.
const EnvTemplate = "UPSTREAM_AZURE_URL_TEMPLATE"

// DefaultTemplate is the public Azure OpenAI endpoint.
const DefaultTemplate = "https://{resource}.openai.azure.com/openai/deployments/{deployment}"

var (
	resourceRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	deploymentRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// Provider is Azure OpenAI.
type Provider struct {
	openai.Format
	template string
}

// New returns the provider for a URL template with {resource} and
// {deployment} placeholders.
func New(template string) (*Provider, error) {
	template = strings.TrimRight(template, "/")
	if !strings.Contains(template, "{resource}") || !strings.Contains(template, "{deployment}") {
		return nil, fmt.Errorf("%s must contain {resource} and {deployment}, got %q", EnvTemplate, template)
	}
	if _, err := provider.JoinURL(expand(template, "r", "d"), "x", ""); err != nil {
		return nil, fmt.Errorf("%s must be an absolute http(s) URL template, got %q", EnvTemplate, template)
	}
	return &Provider{template: template}, nil
}

// FromEnv reads UPSTREAM_AZURE_URL_TEMPLATE.
func FromEnv(getenv func(string) string) (provider.Provider, error) {
	t := strings.TrimSpace(getenv(EnvTemplate))
	if t == "" {
		t = DefaultTemplate
	}
	return New(t)
}

func expand(template, resource, deployment string) string {
	return strings.NewReplacer("{resource}", resource, "{deployment}", deployment).Replace(template)
}

// Name implements provider.Provider.
func (*Provider) Name() string { return "azure" }

// Prefix implements provider.Provider.
func (*Provider) Prefix() string { return provider.RoutePrefix + "azure/" }

var errBadPath = provider.ErrBadPath

// Route accepts {resource}/{deployment}/{path} and the Azure SDKs' own
// {resource}/openai/deployments/{deployment}/{path}.
func (p *Provider) Route(rest string) (provider.Target, error) {
	var t provider.Target
	parts := strings.SplitN(rest, "/", 5)
	switch {
	case len(parts) == 5 && parts[1] == "openai" && parts[2] == "deployments":
		t.Resource, t.Deployment, rest = parts[0], parts[3], parts[4]
	case len(parts) >= 3 && parts[1] != "openai":
		t.Resource, t.Deployment = parts[0], parts[1]
		rest = strings.Join(parts[2:], "/")
	default:
		return t, errBadPath
	}
	if !resourceRE.MatchString(t.Resource) || !deploymentRE.MatchString(t.Deployment) || t.Deployment == "." || t.Deployment == ".." {
		return t, errBadPath
	}
	if err := provider.CheckRest(rest); err != nil {
		return t, err
	}
	t.Rest, t.Path, t.Credential, t.Model = rest, "/"+rest, p.Name(), t.Deployment
	return t, nil
}

// MissingCredential implements provider.Provider.
func (*Provider) MissingCredential(_ *provider.Target, c provider.Credential) string {
	if c.APIKey == "" {
		return "providers.azure.api_key"
	}
	return ""
}

// Inspect: the deployment in the path is what runs, whatever the body's
// "model" says; the tenant maps deployments to models
// (providers.azure.deployments), else the deployment's name is the model.
// The body says only whether the request streams.
func (p *Provider) Inspect(t *provider.Target, c provider.Credential, body []byte) provider.Request {
	r := p.Format.Inspect(t, c, body)
	r.Model = t.Deployment
	if m := c.Deployments[t.Deployment]; m != "" {
		r.Model = m
	}
	return r
}

// ModelFree: every Azure path runs its deployment.
func (*Provider) ModelFree(*provider.Target, string) bool { return false }

// URL fills the operator's template; a tenant base URL does not apply (the
// resource in the path names the endpoint). A tenant that pinned its
// resources (providers.azure.resources) gets a 403 for any other: its key
// is never sent to a resource the caller names.
func (p *Provider) URL(t *provider.Target, c provider.Credential, rawQuery string) (string, bool, error) {
	if len(c.Resources) > 0 && !slices.Contains(c.Resources, t.Resource) {
		return "", false, &provider.Refusal{Status: http.StatusForbidden, Code: "resource_not_allowed",
			Message: "Azure resource " + t.Resource + " is not allowed for this organisation (config providers.azure.resources)"}
	}
	dest, err := provider.JoinURL(expand(p.template, t.Resource, t.Deployment), t.Rest, rawQuery)
	return dest, false, err
}

// Authorize sends the key in api-key.
func (*Provider) Authorize(r *http.Request, c provider.Credential, _ []byte) error {
	r.Header.Set("Api-Key", c.APIKey)
	return nil
}
