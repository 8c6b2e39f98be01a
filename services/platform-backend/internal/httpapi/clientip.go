package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// clientIP is the caller's address: the TCP peer, or — only when the peer is
// a trusted proxy (TRUSTED_PROXIES) — the nearest address in X-Forwarded-For
// that is not itself a trusted proxy.
func (a *API) clientIP(c echo.Context) string {
	return clientAddr(c.Request(), a.cfg.TrustedProxies).String()
}

func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
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
