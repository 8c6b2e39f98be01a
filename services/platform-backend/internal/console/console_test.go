package console

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func newServer(t *testing.T, opts Options) *echo.Echo {
	t.Helper()
	h, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	h.Routes(e)
	return e
}

func get(e *echo.Echo, path string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

// TestServesFilesWithSecurityHeaders: every console answer carries the CSP
// and the other headers; types are right; /console redirects to /console/.
func TestServesFilesWithSecurityHeaders(t *testing.T) {
	e := newServer(t, Options{})
	for path, wantType := range map[string]string{
		"/console/":                          "text/html; charset=utf-8",
		"/console/index.html":                "text/html; charset=utf-8",
		"/console/js/main.js":                "text/javascript; charset=utf-8",
		"/console/css/console.css":           "text/css; charset=utf-8",
		"/console/vendor/uplot/uPlot.esm.js": "text/javascript; charset=utf-8",
		"/console/vendor/uplot/LICENSE":      "text/plain; charset=utf-8",
		"/console/config.json":               "application/json",
	} {
		rec := get(e, path)
		if rec.Code != http.StatusOK {
			t.Errorf("%s: %d", path, rec.Code)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
			t.Errorf("%s: Content-Type %q, want %q", path, ct, wantType)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin",
		} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	if rec := get(e, "/console"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/console/" {
		t.Errorf("/console: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	head := httptest.NewRecorder()
	e.ServeHTTP(head, httptest.NewRequest(http.MethodHead, "/console/", nil))
	if head.Code != http.StatusOK || head.Header().Get("Content-Security-Policy") != CSP {
		t.Errorf("HEAD /console/: %d", head.Code)
	}
	post := httptest.NewRecorder()
	e.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/console/", nil))
	if post.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /console/: %d, want 405", post.Code)
	}
}

// TestUnknownAndTraversal: only embedded files are served; no path leaves
// the web directory.
func TestUnknownAndTraversal(t *testing.T) {
	e := newServer(t, Options{})
	for _, p := range []string{"/console/nope.js", "/console/../console.go", "/console/%2e%2e/console.go", "/console/js/../../console.go",
		"/console/web/index.html", "/console/.hidden"} {
		if rec := get(e, p); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
}

// TestETagRevalidation: files are revalidated (no-cache) and a matching
// If-None-Match gets 304.
func TestETagRevalidation(t *testing.T) {
	e := newServer(t, Options{})
	rec := get(e, "/console/js/main.js")
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, rec.Header().Get("Cache-Control"))
	}
	if rec := get(e, "/console/js/main.js", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation: %d", rec.Code)
	}
}

// TestConfig: the gateway URL for SDK snippets, never cached.
func TestConfig(t *testing.T) {
	e := newServer(t, Options{GatewayURL: "https://gw.example.com"})
	rec := get(e, "/console/config.json")
	var c map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || c["gateway_url"] != "https://gw.example.com" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("config: %s %v %q", rec.Body, err, rec.Header().Get("Cache-Control"))
	}
}

var (
	inlineScript = regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	handlerAttr  = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	styleAttr    = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
	styleElem    = regexp.MustCompile(`(?i)<style\b`)
)

// TestNoInlineCode: the HTML has no inline script, handler or style (the
// CSP would refuse them), and the console's own scripts never parse
// strings as HTML or code: every API value reaches the page as text.
func TestNoInlineCode(t *testing.T) {
	web, _ := fs.Sub(files, "web")
	html, err := fs.ReadFile(web, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for name, re := range map[string]*regexp.Regexp{"inline script": inlineScript, "event handler attribute": handlerAttr,
		"style attribute": styleAttr, "style element": styleElem} {
		if re.Match(html) {
			t.Errorf("index.html has an %s", name)
		}
	}
	forbidden := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setAttribute\(\s*['"]on|setAttribute\(\s*['"]style|localStorage`)
	n := 0
	err = fs.WalkDir(web, "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		f, err := web.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for line := 1; sc.Scan(); line++ {
			if m := forbidden.FindString(sc.Text()); m != "" && !strings.HasPrefix(strings.TrimSpace(sc.Text()), "//") {
				t.Errorf("%s:%d uses %s", p, line, m)
			}
		}
		return sc.Err()
	})
	if err != nil || n < 10 {
		t.Fatalf("walked %d scripts: %v", n, err)
	}
}

// TestVendoredUPlot: the vendored chart library is the released package,
// byte for byte, with its licence (VENDOR lists the digests).
func TestVendoredUPlot(t *testing.T) {
	web, _ := fs.Sub(files, "web")
	manifest, err := fs.ReadFile(web, "vendor/uplot/VENDOR")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(string(manifest), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "sha256" {
			continue
		}
		b, err := fs.ReadFile(web, "vendor/uplot/"+f[2])
		if err != nil {
			t.Errorf("%s: %v", f[2], err)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != f[1] {
			t.Errorf("%s: sha256 %s, VENDOR says %s", f[2], got, f[1])
		}
		checked++
	}
	if checked != 3 {
		t.Fatalf("VENDOR lists %d files, want uPlot.esm.js, uPlot.min.css and LICENSE", checked)
	}
	if lic, _ := fs.ReadFile(web, "vendor/uplot/LICENSE"); !strings.Contains(string(lic), "MIT License") {
		t.Error("uPlot's LICENSE is not the MIT licence")
	}
}

// TestModulesResolve: every relative import of every module names an
// embedded file (a typo would only show in a browser).
func TestModulesResolve(t *testing.T) {
	web, _ := fs.Sub(files, "web")
	imp := regexp.MustCompile(`\bfrom\s+['"](\.[^'"]+)['"]`)
	n := 0
	err := fs.WalkDir(web, "js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web, p)
		if err != nil {
			return err
		}
		dir := p[:strings.LastIndex(p, "/")]
		for _, m := range imp.FindAllStringSubmatch(string(b), -1) {
			n++
			target := joinPath(dir, m[1])
			if _, err := fs.Stat(web, target); err != nil {
				t.Errorf("%s imports %s (%s): %v", p, m[1], target, err)
			}
		}
		return nil
	})
	if err != nil || n < 20 {
		t.Fatalf("%d imports checked: %v", n, err)
	}
}

func joinPath(dir, rel string) string {
	parts := strings.Split(dir, "/")
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case ".":
		case "..":
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, seg)
		}
	}
	return strings.Join(parts, "/")
}
