// Package gatewayrelay forwards the gateway's management API
// (/trueportai-services/api/*) from the platform's origin to the gateway,
// so that the web console reaches both services from one origin where no
// edge (CloudFront, the Kubernetes Ingress) routes the path: `make run`
// and docker compose. It relays nothing else: not the proxy routes, not
// health; with an edge in front it is not configured at all.
package gatewayrelay

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
)

// Prefix is the path the relay forwards, unchanged, to the gateway.
const Prefix = "/trueportai-services/api/"

// Relay is the reverse proxy to one gateway.
type Relay struct {
	proxy *httputil.ReverseProxy
}

// New relays to the gateway at target (scheme and host; its path is
// ignored: paths are forwarded as they come).
func New(target *url.URL, log *slog.Logger) *Relay {
	base := &url.URL{Scheme: target.Scheme, Host: target.Host}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 30 * time.Second
	return &Relay{proxy: &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Host = base.Host
			// The console sends its token as Authorization; nothing else
			// of the browser's identity is the gateway's business.
			pr.Out.Header.Del("Cookie")
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.WarnContext(r.Context(), "gateway relay failed", "path", r.URL.Path, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
				"code": "gateway_unreachable", "message": "the gateway did not answer", "details": map[string]any{},
			}})
		},
	}}
}

// Routes registers the relay for every method under Prefix.
func (r *Relay) Routes(e *echo.Echo) {
	e.Any(Prefix+"*", echo.WrapHandler(r))
}

// ServeHTTP relays one request. The answer carries the gateway's request
// id (the one in the gateway's logs), not the platform's.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Del("X-Request-Id")
	r.proxy.ServeHTTP(w, req)
}
