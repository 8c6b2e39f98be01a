package registry

import (
	"net/url"
	"strings"
	"testing"

	"trueportai/services/gateway/internal/provider"
)

var testUpstreams = map[string]string{
	"UPSTREAM_OPENAI_URL":           "https://api.openai.test/v1",
	"UPSTREAM_ANTHROPIC_URL":        "https://api.anthropic.test/v1",
	"UPSTREAM_GOOGLE_URL":           "https://generativelanguage.test/v1beta",
	"UPSTREAM_AZURE_URL_TEMPLATE":   "https://{resource}.openai.azure.test/openai/deployments/{deployment}",
	"UPSTREAM_BEDROCK_URL_TEMPLATE": "https://bedrock-runtime.{region}.amazonaws.test",
}

// route resolves a request path the way the proxy does.
func route(t testing.TB, path, query string) (provider.Provider, provider.Target, string, error) {
	r, err := New(env(testUpstreams))
	if err != nil {
		t.Fatal(err)
	}
	p, rest, ok := r.Match(path)
	if !ok {
		return nil, provider.Target{}, "", provider.ErrBadPath
	}
	tg, err := p.Route(rest)
	if err != nil {
		return p, tg, "", err
	}
	out, _, err := p.URL(&tg, provider.Credential{Region: "eu-west-1"}, query)
	return p, tg, out, err
}

func TestParseTarget(t *testing.T) {
	ok := map[string]string{
		"/trueportai-services/openai/v1/chat/completions":                                                                               "https://api.openai.test/v1/chat/completions",
		"/trueportai-services/openai/v1/models/gpt-4o":                                                                                  "https://api.openai.test/v1/models/gpt-4o",
		"/trueportai-services/anthropic/v1/messages":                                                                                    "https://api.anthropic.test/v1/messages",
		"/trueportai-services/google/v1beta/models/gemini-2.5-flash:generateContent":                                                    "https://generativelanguage.test/v1beta/models/gemini-2.5-flash:generateContent",
		"/trueportai-services/azure/myres/gpt4o/chat/completions":                                                                       "https://myres.openai.azure.test/openai/deployments/gpt4o/chat/completions",
		"/trueportai-services/azure/myres/openai/deployments/gpt-4o.1/chat/completions":                                                 "https://myres.openai.azure.test/openai/deployments/gpt-4o.1/chat/completions",
		"/trueportai-services/openai/v1/files/file-abc%20def/content":                                                                   "https://api.openai.test/v1/files/file-abc%20def/content",
		"/trueportai-services/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse":                                       "https://bedrock-runtime.eu-west-1.amazonaws.test/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse",
		"/trueportai-services/bedrock/model/anthropic.claude-v2:1/invoke-with-response-stream":                                          "https://bedrock-runtime.eu-west-1.amazonaws.test/model/anthropic.claude-v2:1/invoke-with-response-stream",
		"/trueportai-services/bedrock/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123%3Ainference-profile%2Feu.meta.llama3/converse-stream": "https://bedrock-runtime.eu-west-1.amazonaws.test/model/arn:aws:bedrock:eu-west-1:123:inference-profile%2Feu.meta.llama3/converse-stream",
	}
	for in, want := range ok {
		_, _, got, err := route(t, in, "")
		if err != nil || got != want {
			t.Errorf("%s → %s (%v), want %s", in, got, err, want)
		}
	}
	bad := []string{
		"/trueportai-services/openai/v1/",
		"/trueportai-services/openai/v1/../admin",
		"/trueportai-services/openai/v1/chat/../../admin",
		"/trueportai-services/openai/v1/%2e%2e/admin",
		"/trueportai-services/openai/v1/%2E%2E/admin",
		"/trueportai-services/openai/v1/%252e%252e/admin",
		"/trueportai-services/openai/v1/chat%2f..%2fadmin",
		"/trueportai-services/openai/v1//evil.example/x",
		"/trueportai-services/openai/v1/a/./b",
		"/trueportai-services/openai/v1/a\\..\\b",
		"/trueportai-services/openai/v1/a%00b",
		"/trueportai-services/openai/v1/a%3fb",
		"/trueportai-services/azure/Evil/dep/chat/completions",
		"/trueportai-services/azure/evil.example.com/dep/chat/completions",
		"/trueportai-services/azure/res/dep%2f..%2f/chat",
		"/trueportai-services/azure/res/../chat/completions",
		"/trueportai-services/azure/res/openai/deployments/../x",
		"/trueportai-services/azure/res/openai/chat",
		"/trueportai-services/azure/-res/dep/chat",
		"/trueportai-services/azure/res@evil/dep/chat",
		"/trueportai-services/other/v1/x",
		"/trueportai-services/bedrock/model/m/delete",
		"/trueportai-services/bedrock/model//converse",
		"/trueportai-services/bedrock/model/../converse",
		"/trueportai-services/bedrock/model/a%2F..%2Fb/converse",
		"/trueportai-services/bedrock/model/a%2F%2Fb/converse",
		"/trueportai-services/bedrock/guardrail/g/version/1/apply",
		"/trueportai-services/bedrock/model/m%3Fx/converse",
		"/trueportai-services/bedrock/model/m%00/converse",
	}
	for _, in := range bad {
		if _, _, _, err := route(t, in, ""); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

// FuzzUpstreamURL: whatever the path, the built URL stays on its provider's
// host and under its base path, and holds no dot segment.
func FuzzUpstreamURL(f *testing.F) {
	for _, s := range []string{"chat/completions", "../x", "%2e%2e/x", "a/%252e/b", "models/g:generateContent", "a//b", "x?y#z", "%c0%ae%c0%ae/"} {
		f.Add("openai", s, "res", "dep", "a=b")
		f.Add("azure", s, "res", "dep", "api-version=1")
		f.Add("bedrock", s, "anthropic.claude%3A0", "dep", "")
	}
	f.Fuzz(func(t *testing.T, prov, rest, res, dep, query string) {
		path := "/trueportai-services/" + prov + "/v1/" + rest
		switch prov {
		case "google":
			path = "/trueportai-services/google/v1beta/" + rest
		case "azure":
			path = "/trueportai-services/azure/" + res + "/" + dep + "/" + rest
		case "bedrock":
			path = "/trueportai-services/bedrock/model/" + res + "/" + rest
		}
		p, tg, out, err := route(t, path, query)
		if err != nil {
			return
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("built an unparsable URL %q", out)
		}
		var base *url.URL
		switch p.Name() {
		case "openai":
			base, _ = url.Parse(testUpstreams["UPSTREAM_OPENAI_URL"])
		case "anthropic":
			base, _ = url.Parse(testUpstreams["UPSTREAM_ANTHROPIC_URL"])
		case "google":
			base, _ = url.Parse(testUpstreams["UPSTREAM_GOOGLE_URL"])
		case "bedrock":
			base, _ = url.Parse("https://bedrock-runtime.eu-west-1.amazonaws.test")
		case "azure":
			base, _ = url.Parse(strings.NewReplacer("{resource}", tg.Resource, "{deployment}", tg.Deployment).Replace(testUpstreams["UPSTREAM_AZURE_URL_TEMPLATE"]))
			if !strings.HasSuffix(u.Host, ".openai.azure.test") || strings.Count(u.Host, ".") != 3 {
				t.Fatalf("azure host escaped: %q from %q", u.Host, path)
			}
		}
		if u.Host != base.Host || u.Scheme != base.Scheme || u.User != nil {
			t.Fatalf("host escaped: %q from %q", out, path)
		}
		if !strings.HasPrefix(u.Path, base.Path+"/") {
			t.Fatalf("path escaped base: %q from %q", u.Path, path)
		}
		for _, seg := range strings.Split(strings.TrimPrefix(u.Path, base.Path+"/"), "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("dot or empty segment in %q from %q", u.Path, path)
			}
		}
	})
}
