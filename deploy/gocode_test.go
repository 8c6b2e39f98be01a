package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestCollectEnvReads: the readers the services use, a constant name, and
// a table of {name, default} rows handed to one in a loop.
func TestCollectEnvReads(t *testing.T) {
	const src = `package config
const EnvUpstream = "UPSTREAM_X_URL"
func Load(getenv func(string) string) {
	get := func(k, def string) string { return def }
	_ = get("APP_ENV", "prod")
	_ = dur("CACHE_TTL", "60s")
	_ = getenv("DEBUG_ADDR")
	_, _ = EnvURL(getenv, EnvUpstream, "https://x.example/v1")
	for _, d := range []struct{ name, def string }{{"READ_HEADER_TIMEOUT", "10s"}} {
		_ = get(d.name, d.def)
	}
	_ = fmt.Errorf("NOT_READ must be set") // an error message, not a read
	log("PLAIN_CALL")                      // not an env reader
}`
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]envRead{}
	collectEnvReads(f, stringConsts([]*ast.File{f}), got)
	want := map[string]string{"APP_ENV": "prod", "CACHE_TTL": "60s", "DEBUG_ADDR": "", "UPSTREAM_X_URL": "https://x.example/v1", "READ_HEADER_TIMEOUT": "10s"}
	for name, def := range want {
		if r, ok := got[name]; !ok || r.def != def {
			t.Errorf("%s: got %+v, %v; want default %q", name, r, ok, def)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want exactly %v", got, want)
	}
}

func TestPathMatchers(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/health/live", "/health/live", true},
		{"/health", "/health/live", false},
		{"/platform/api/service/configs/:key", "/platform/api/service/configs/x", true},
		{"/platform/api/service/configs/:key", "/platform/api/service/configs/", false},
		{"/trueportai-services/*", "/trueportai-services/openai/v1/chat", true},
	} {
		if got := matchEchoPath(c.pattern, c.path); got != c.want {
			t.Errorf("matchEchoPath(%q, %q) = %v", c.pattern, c.path, got)
		}
	}
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"/platform/api/*", "/platform/api/global/auth/login", true},
		{"platform/api/*", "/platform/api/x", true},
		{"/platform/api/*", "/platform/api", false},
		{"/platform/api/*", "/Platform/api/x", false},
		{"/a?c", "/abc", true},
		{"/a.c", "/abc", false},
	} {
		if got := cfPatternMatch(c.pattern, c.path); got != c.want {
			t.Errorf("cfPatternMatch(%q, %q) = %v", c.pattern, c.path, got)
		}
	}
	if got := samplePath("/a/:id/b/*"); got != "/a/x/b/x/y" {
		t.Errorf("samplePath = %q", got)
	}
	for s, want := range map[string]int64{"33m": 33 << 20, "512k": 512 << 10, "1g": 1 << 30, "100": 100, "": 1 << 20} {
		if got, ok := nginxSize(s); !ok || got != want {
			t.Errorf("nginxSize(%q) = %d, %v", s, got, ok)
		}
	}
}
