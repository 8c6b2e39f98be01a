package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// clientIP is the caller's address: the TCP peer, or — only when the peer is
// a trusted proxy (TRUSTED_PROXIES) — the viewer address CloudFront sends
// (CloudFront-Viewer-Address, "ip:port"), else the nearest address in
// X-Forwarded-For that is not itself a trusted proxy.
func (a *API) clientIP(c echo.Context) string {
	return clientAddr(c.Request(), a.cfg.TrustedProxies).String()
}

func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	if v := r.Header.Values("CloudFront-Viewer-Address"); len(v) == 1 {
		// CloudFront sets it once ("ip:port"; IPv6 as "2001:db8::1:443"):
		// the address is everything before the last colon.
		if i := strings.LastIndexByte(v[0], ':'); i > 0 {
			if a, err := netip.ParseAddr(strings.Trim(v[0][:i], "[]")); err == nil {
				return a.Unmap()
			}
		}
	}
	hops := r.Header.Values("X-Forwarded-For")
	var list []string
	for _, h := range hops {
		list = append(list, strings.Split(h, ",")...)
	}
	addr := peer
	// Right to left: each hop was appended by the proxy before it.
	for i := len(list) - 1; i >= 0; i-- {
		hop := parseAddr(strings.TrimSpace(list[i]))
		if !hop.IsValid() {
			break // garbage from beyond the last trusted proxy
		}
		addr = hop
		if !isTrusted(hop, trusted) {
			break
		}
	}
	return addr
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port"; IPv4-mapped IPv6
// addresses become IPv4.
func parseAddr(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
