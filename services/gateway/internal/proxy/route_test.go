package proxy

import (
	"net/url"
	"strings"
	"testing"

	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/metering"
)

var testUpstreams = config.Upstreams{
	OpenAI:        "https://api.openai.test/v1",
	Anthropic:     "https://api.anthropic.test/v1",
	Google:        "https://generativelanguage.test/v1beta",
	AzureTemplate: "https://{resource}.openai.azure.test/openai/deployments/{deployment}",
}

func TestParseTarget(t *testing.T) {
	ok := map[string]string{
		"/trueportai-services/openai/v1/chat/completions":                               "https://api.openai.test/v1/chat/completions",
		"/trueportai-services/openai/v1/models/gpt-4o":                                  "https://api.openai.test/v1/models/gpt-4o",
		"/trueportai-services/anthropic/v1/messages":                                    "https://api.anthropic.test/v1/messages",
		"/trueportai-services/google/v1beta/models/gemini-2.5-flash:generateContent":    "https://generativelanguage.test/v1beta/models/gemini-2.5-flash:generateContent",
		"/trueportai-services/azure/myres/gpt4o/chat/completions":                       "https://myres.openai.azure.test/openai/deployments/gpt4o/chat/completions",
		"/trueportai-services/azure/myres/openai/deployments/gpt-4o.1/chat/completions": "https://myres.openai.azure.test/openai/deployments/gpt-4o.1/chat/completions",
		"/trueportai-services/openai/v1/files/file-abc%20def/content":                   "https://api.openai.test/v1/files/file-abc%20def/content",
	}
	for in, want := range ok {
		tg, err := parseTarget(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		got, err := upstreamURL(testUpstreams, tg, "", "")
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
	}
	for _, in := range bad {
		if _, err := parseTarget(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func TestUpstreamQueryDropsCallerKey(t *testing.T) {
	tg, _ := parseTarget("/trueportai-services/google/v1beta/models/g:streamGenerateContent")
	got, _ := upstreamURL(testUpstreams, tg, "", "alt=sse&key=sk-caller&x=1")
	if strings.Contains(got, "sk-caller") || !strings.HasSuffix(got, "?alt=sse&x=1") {
		t.Fatalf("query = %s", got)
	}
}

// FuzzUpstreamURL: whatever the path, the built URL stays on its provider's
// host and under its base path, and holds no dot segment.
func FuzzUpstreamURL(f *testing.F) {
	for _, s := range []string{"chat/completions", "../x", "%2e%2e/x", "a/%252e/b", "models/g:generateContent", "a//b", "x?y#z", "%c0%ae%c0%ae/"} {
		f.Add("openai", s, "res", "dep", "a=b")
		f.Add("azure", s, "res", "dep", "api-version=1")
	}
	f.Fuzz(func(t *testing.T, prov, rest, res, dep, query string) {
		var path string
		switch prov {
		case "openai":
			path = prefixOpenAI + rest
		case "anthropic":
			path = prefixAnthropic + rest
		case "google":
			path = prefixGoogle + rest
		default:
			path = prefixAzure + res + "/" + dep + "/" + rest
		}
		tg, err := parseTarget(path)
		if err != nil {
			return
		}
		out, err := upstreamURL(testUpstreams, tg, "", query)
		if err != nil {
			return
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("built an unparsable URL %q", out)
		}
		var base *url.URL
		switch tg.provider {
		case metering.OpenAI:
			base, _ = url.Parse(testUpstreams.OpenAI)
		case metering.Anthropic:
			base, _ = url.Parse(testUpstreams.Anthropic)
		case metering.Google:
			base, _ = url.Parse(testUpstreams.Google)
		case metering.Azure:
			base, _ = url.Parse(strings.NewReplacer("{resource}", tg.resource, "{deployment}", tg.deployment).Replace(testUpstreams.AzureTemplate))
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
		if strings.Contains(u.RawQuery, "key=") && strings.HasPrefix(u.RawQuery, "key=") {
			t.Fatalf("caller key kept in query %q", u.RawQuery)
		}
	})
}
