package deploy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseNginx: nginx's grammar (quotes, escapes, comments, ${var}) and
// the schema (context, argument count, flags, blocks) as nginx -t reads
// them.
func TestParseNginx(t *testing.T) {
	conf, err := parseNginx(`# top
events { worker_connections 1; }
http {
    log_format edge '$remote_addr "$request" ${upstream_addr}'; # a comment
    upstream u { zone u 64k; server a:1 resolve; }
    server {
        listen 80;
        proxy_set_header X-A "a b;c";
        location = /exact { return 404; }
        location /p/ { proxy_pass http://u; proxy_set_header X-B b; }
        location / { return 404; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	srv := ngxServers(conf)
	if len(srv) != 1 || len(srv[0].locations) != 3 {
		t.Fatalf("servers %v", srv)
	}
	lf := ngxFind(ngxFind(conf, "http")[0].block, "log_format")[0]
	if want := []string{"edge", `$remote_addr "$request" ${upstream_addr}`}; !slices.Equal(lf.args, want) {
		t.Errorf("log_format args %q, want %q", lf.args, want)
	}
	s := srv[0]
	for path, want := range map[string]string{"/exact": "= /exact", "/exact/x": "/", "/p/x": "/p/", "/p": "/", "/": "/"} {
		l := s.locationFor(path)
		if got := strings.Join(l.d.args, " "); got != want {
			t.Errorf("location for %s = %s, want %s", path, got, want)
		}
	}
	// proxy_set_header in a location replaces the inherited ones.
	p := s.locationFor("/p/x")
	if _, ok := p.header("X-A"); ok {
		t.Error("X-A inherited although the location sets its own headers")
	}
	if v, _ := s.locationFor("/exact").header("x-a"); v != "a b;c" {
		t.Errorf("inherited X-A = %q", v)
	}

	for _, bad := range []string{
		"events {}\nhttp { server { listen 80 } }",            // missing ;
		"http { server { listen 80; }",                        // unclosed block
		"http { server { listen 80; } } }",                    // stray }
		"http { proxy_pass http://u; }",                       // wrong context
		"http { server { location / { gzip maybe; } } }",      // not a flag
		"http { server { location / { proxy_pass; } } }",      // argument count
		"http { upstream u { server a:1 resolve; } listen; }", // listen in http
		"events;",                                 // a block directive without block
		"http { server { return 404 { } } }",      // a block on a simple directive
		`http { server { listen "80; } }`,         // unterminated quote
		"http { server { proxy_bufering off; } }", // misspelt
		"worker_connections 1;",                   // events only
	} {
		if _, err := parseNginx(bad); err == nil {
			t.Errorf("parsed:\n%s", bad)
		}
	}
}

func TestNginxValues(t *testing.T) {
	for s, want := range map[string]time.Duration{"360s": 6 * time.Minute, "6m": 6 * time.Minute, "60": time.Minute, "500ms": 500 * time.Millisecond} {
		if d, ok := ngxTime(s); !ok || d != want {
			t.Errorf("ngxTime(%q) = %v %v, want %v", s, d, ok, want)
		}
	}
	if _, ok := ngxTime("6 minutes"); ok {
		t.Error("ngxTime accepted 6 minutes")
	}
	for image, ok := range map[string]bool{"nginx:1.28-alpine": true, "nginx:1.27.3": true, "nginx:1.27-alpine": false, "nginx:1.26.2": false,
		"nginx:2.0": true, "nginx:stable-alpine": false, "nginx": false, "openresty/openresty:1.27": false} {
		v, parsed := nginxVersion(image)
		if got := parsed && versionAtLeast(v, edgeMinNginx); got != ok {
			t.Errorf("%s: >= 1.27.3 is %v, want %v", image, got, ok)
		}
	}
}
