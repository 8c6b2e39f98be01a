package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/httpserver"
)

func loadOpenAPI(t *testing.T) (map[string]any, map[string]map[string]json.RawMessage) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(openAPIDoc, &raw); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	return raw, doc.Paths
}

var echoParamRE = regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)

// TestOpenAPICoversRoutes keeps openapi.json and Routes in step: every route
// registered on the echo instance is documented, and every documented
// operation is registered.
func TestOpenAPICoversRoutes(t *testing.T) {
	raw, paths := loadOpenAPI(t)
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	e := echo.New()
	(&API{}).Routes(e, httpserver.Probes{Health: func(echo.Context) error { return nil }, Local: func(echo.Context) error { return nil }})

	registered := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		p := echoParamRE.ReplaceAllString(r.Path, "{$1}")
		m := strings.ToLower(r.Method)
		registered[m+" "+p] = true
		if _, ok := paths[p][m]; !ok {
			t.Errorf("route %s %s is not in openapi.json (as %s %s)", r.Method, r.Path, m, p)
		}
	}
	if len(registered) < 17 {
		t.Errorf("only %d routes registered; Routes changed shape?", len(registered))
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	for p, ops := range paths {
		for m := range ops {
			if methods[m] && !registered[m+" "+p] {
				t.Errorf("openapi.json documents %s %s, which is not registered", strings.ToUpper(m), p)
			}
		}
	}
}

// TestOpenAPIWellFormed checks what a generator would: unique operation ids,
// declared path parameters, responses on every operation, resolvable $refs,
// and a security decision on every operation (public ones say so).
func TestOpenAPIWellFormed(t *testing.T) {
	raw, paths := loadOpenAPI(t)
	ids := map[string]string{}
	for p, ops := range paths {
		for m, rawOp := range ops {
			var op struct {
				OperationID string            `json:"operationId"`
				Parameters  []json.RawMessage `json:"parameters"`
				Responses   map[string]any    `json:"responses"`
				Security    *[]any            `json:"security"`
			}
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Fatalf("%s %s: %v", m, p, err)
			}
			where := strings.ToUpper(m) + " " + p
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", where)
			} else if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %s used by %s and %s", op.OperationID, prev, where)
			}
			ids[op.OperationID] = where
			if len(op.Responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			// Management routes need the bearer token (the document's
			// default); health and this document are public.
			public := !strings.HasPrefix(p, "/trueportai-services/api/v1/") || p == "/trueportai-services/api/v1/openapi.json"
			if public != (op.Security != nil && len(*op.Security) == 0) {
				t.Errorf("%s: public=%v but security=%v", where, public, op.Security)
			}
			if !public {
				for _, code := range []string{"401", "403", "429"} {
					if _, ok := op.Responses[code]; !ok {
						t.Errorf("%s: no %s response", where, code)
					}
				}
			}
			declared := map[string]bool{}
			for _, prm := range op.Parameters {
				var pp struct{ Name, In string }
				_ = json.Unmarshal(prm, &pp)
				if pp.In == "path" {
					declared[pp.Name] = true
				}
			}
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(p, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter %s not declared", where, m[1])
				}
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && k == "$ref" {
					node := any(raw)
					for _, part := range strings.Split(strings.TrimPrefix(s, "#/"), "/") {
						m, ok := node.(map[string]any)
						if !ok {
							node = nil
							break
						}
						node = m[part]
					}
					if node == nil {
						t.Errorf("unresolvable $ref %s", s)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(raw)
}

// TestOpenAPIServed: the document is public.
func TestOpenAPIServed(t *testing.T) {
	e := echo.New()
	(&API{}).Routes(e, httpserver.Probes{Health: func(echo.Context) error { return nil }, Local: func(echo.Context) error { return nil }})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/trueportai-services/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || rec.Body.String() != string(openAPIDoc) {
		t.Errorf("GET openapi.json = %d %s (%d bytes)", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}
