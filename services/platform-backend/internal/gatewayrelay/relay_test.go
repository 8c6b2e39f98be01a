package gatewayrelay

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func relayTo(t *testing.T, target string) *echo.Echo {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	New(u, slog.New(slog.NewTextHandler(io.Discard, nil))).Routes(e)
	e.GET("/platform/api/x", func(c echo.Context) error { return c.String(http.StatusOK, "platform") })
	return e
}

// TestRelaysManagementCalls: method, path, query, body and the bearer token
// reach the gateway unchanged; the answer (status, body, the gateway's
// request id) comes back; cookies do not travel.
func TestRelaysManagementCalls(t *testing.T) {
	type seen struct {
		method, uri, auth, cookie, body, host string
	}
	got := make(chan seen, 1)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Cookie"), string(b), r.Host}
		w.Header().Set("X-Request-Id", "gw-1")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"k1"}`)
	}))
	defer gw.Close()
	e := relayTo(t, gw.URL)

	req := httptest.NewRequest(http.MethodPost, "/trueportai-services/api/v1/keys?x=1", strings.NewReader(`{"name":"a"}`))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set("Cookie", "session=secret")
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Request-Id", "platform-1") // as the platform's middleware does
	e.ServeHTTP(rec, req)

	s := <-got
	gwHost := strings.TrimPrefix(gw.URL, "http://")
	if s.method != "POST" || s.uri != "/trueportai-services/api/v1/keys?x=1" || s.auth != "Bearer tok" || s.cookie != "" || s.body != `{"name":"a"}` || s.host != gwHost {
		t.Fatalf("the gateway saw %+v", s)
	}
	if rec.Code != http.StatusCreated || rec.Body.String() != `{"id":"k1"}` {
		t.Fatalf("answer %d %s", rec.Code, rec.Body)
	}
	if ids := rec.Header().Values("X-Request-Id"); len(ids) != 1 || ids[0] != "gw-1" {
		t.Fatalf("request ids %q, want the gateway's only", ids)
	}
}

// TestRelaysOnlyTheManagementAPI: proxy routes and health stay off the
// relay (404 from the platform's router).
func TestRelaysOnlyTheManagementAPI(t *testing.T) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the gateway was called for %s", r.URL.Path)
	}))
	defer gw.Close()
	e := relayTo(t, gw.URL)
	for _, p := range []string{"/trueportai-services/openai/v1/chat/completions", "/trueportai-services/health", "/trueportai-services/api"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, p, nil))
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
}

// TestGatewayDown: an unreachable gateway is a 502 in the REST error
// envelope.
func TestGatewayDown(t *testing.T) {
	gw := httptest.NewServer(http.NotFoundHandler())
	addr := gw.URL
	gw.Close()
	e := relayTo(t, addr)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/trueportai-services/api/v1/keys", nil))
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if rec.Code != http.StatusBadGateway || json.Unmarshal(rec.Body.Bytes(), &env) != nil || env.Error.Code != "gateway_unreachable" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
