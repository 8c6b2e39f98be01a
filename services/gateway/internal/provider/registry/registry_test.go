package registry

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestNewDefaults(t *testing.T) {
	r, err := New(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"openai", "anthropic", "google", "azure", "bedrock", "compat"}
	if got := r.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("names %v", got)
	}
	for _, p := range r.All() {
		got, rest, ok := r.Match(p.Prefix() + "x/y")
		if !ok || got != p || rest != "x/y" {
			t.Errorf("%s: Match(%q) = %v %q %v", p.Name(), p.Prefix()+"x/y", got, rest, ok)
		}
	}
	if r.IsProxyPath("/trueportai-services/other/v1/x") || r.IsProxyPath("/health") {
		t.Error("unknown paths matched")
	}
}

func TestNewRejectsBadUpstreams(t *testing.T) {
	for name, e := range map[string]map[string]string{
		"openai not a URL":         {"UPSTREAM_OPENAI_URL": "api.openai.com"},
		"anthropic ftp":            {"UPSTREAM_ANTHROPIC_URL": "ftp://x/v1"},
		"azure without deployment": {"UPSTREAM_AZURE_URL_TEMPLATE": "https://{resource}.openai.azure.com/openai"},
		"azure without resource":   {"UPSTREAM_AZURE_URL_TEMPLATE": "https://x.openai.azure.com/openai/deployments/{deployment}"},
		"azure template not a URL": {"UPSTREAM_AZURE_URL_TEMPLATE": "{resource}/{deployment}"},
	} {
		if _, err := New(env(e)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
