// Package egress decides where the gateway may send a request whose
// destination a tenant chose (a provider base URL): never to loopback,
// private, link-local, CGNAT, multicast, unspecified, reserved or cloud
// metadata addresses, unless the operator allows them. The decision is made
// when the connection is dialled, on the address actually dialled (a
// dialer Control hook), so a host name that resolves to a public address
// when saved and to 169.254.169.254 when used (DNS rebinding) is refused
// too. Both services use the same rules: the platform refuses, when a URL
// is saved, what could never be allowed (Policy.CheckURL); the gateway
// enforces at dial time (Policy.DialContext).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is wrapped by every refusal.
var ErrBlocked = errors.New("egress: destination not allowed")

// Policy is the operator's egress policy for tenant-chosen destinations.
// The zero value refuses every internal address and allows http.
type Policy struct {
	// AllowLoopback lets loopback addresses through (APP_ENV=dev).
	AllowLoopback bool
	// RequireHTTPS refuses plain-http tenant URLs (APP_ENV=prod).
	RequireHTTPS bool
	// Allow are operator-allowed networks (self-hosted models on a private
	// network), and AllowHosts host names (exact, or ".example.internal"
	// for a domain and its subdomains) dialled without address checks.
	Allow      []netip.Prefix
	AllowHosts []string
}

// Parse reads an allowlist: comma- or space-separated CIDRs, IP addresses
// and host names (".domain" for a domain and its subdomains).
func Parse(list string) (prefixes []netip.Prefix, hosts []string, err error) {
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		if p, e := netip.ParsePrefix(f); e == nil {
			prefixes = append(prefixes, p.Masked())
			continue
		}
		if a, e := netip.ParseAddr(f); e == nil {
			prefixes = append(prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		h := strings.ToLower(strings.TrimSuffix(f, "."))
		if !validHost(strings.TrimPrefix(h, ".")) {
			return nil, nil, fmt.Errorf("egress allowlist: %q is neither a CIDR, an IP address nor a host name", f)
		}
		hosts = append(hosts, h)
	}
	return prefixes, hosts, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// never are destinations no allowlist opens: cloud metadata endpoints,
// unspecified, multicast, broadcast and reserved ranges.
var never = mustPrefixes(
	"169.254.169.254/32", "169.254.170.2/32", "100.100.100.200/32", "fd00:ec2::254/128", // metadata (AWS, ECS, Alibaba, AWS IPv6)
	"0.0.0.0/8", "::/128", // unspecified / "this network"
	"224.0.0.0/4", "ff00::/8", // multicast
	"240.0.0.0/4", // reserved, incl. broadcast
)

// internal are the ranges refused unless allowed: loopback, private,
// link-local, CGNAT and other non-global ranges.
var internal = mustPrefixes(
	"127.0.0.0/8", "::1/128", // loopback
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", // private
	"169.254.0.0/16", "fe80::/10", // link-local
	"100.64.0.0/10",                                 // CGNAT
	"192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", // IETF protocol assignments, documentation, benchmarking
	"198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", // documentation
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// embedded returns the IPv4 address an IPv6 address carries (IPv4-mapped,
// NAT64 64:ff9b::/96, 6to4 2002::/16), so that a v4 target cannot hide
// behind v6 notation.
func embedded(a netip.Addr) (netip.Addr, bool) {
	a = a.Unmap()
	if a.Is4() {
		return a, false
	}
	b := a.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case netip.MustParsePrefix("2002::/16").Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return a, false
}

// CheckAddr reports whether the policy lets a connection to a through.
func (p *Policy) CheckAddr(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	if v4, ok := embedded(a); ok {
		if err := p.CheckAddr(v4); err != nil {
			return err
		}
	}
	switch {
	case contains(never, a):
		return fmt.Errorf("%w: %s is a metadata, unspecified, multicast or reserved address", ErrBlocked, a)
	case contains(p.Allow, a):
		return nil
	case a.IsLoopback() && p.AllowLoopback:
		return nil
	case contains(internal, a) || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || !a.IsGlobalUnicast():
		return fmt.Errorf("%w: %s is an internal address", ErrBlocked, a)
	}
	return nil
}

// allowedHost reports whether host is on the operator's host allowlist.
func (p *Policy) allowedHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range p.AllowHosts {
		if host == h || (strings.HasPrefix(h, ".") && (strings.HasSuffix(host, h) || host == h[1:])) {
			return true
		}
	}
	return false
}

// CheckScheme is the part of CheckURL the gateway applies per request (the
// addresses are checked when dialled): http(s) only, https with
// RequireHTTPS, no credentials in the URL.
func (p *Policy) CheckScheme(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: not an absolute URL", ErrBlocked)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && !p.RequireHTTPS:
	case p.RequireHTTPS:
		return fmt.Errorf("%w: the URL must use https", ErrBlocked)
	default:
		return fmt.Errorf("%w: the URL must use http or https", ErrBlocked)
	}
	if u.User != nil {
		return fmt.Errorf("%w: the URL may not carry credentials", ErrBlocked)
	}
	return nil
}

// CheckURL refuses, before any connection, what the policy could never
// allow: a scheme other than http(s) (https only with RequireHTTPS),
// credentials in the URL, and hosts that are literal addresses the policy
// refuses or "localhost" names while loopback is refused.
func (p *Policy) CheckURL(raw string) error {
	if err := p.CheckScheme(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if p.allowedHost(host) {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(a)
	}
	if (host == "localhost" || strings.HasSuffix(host, ".localhost")) && !p.AllowLoopback {
		return fmt.Errorf("%w: %s is a loopback name", ErrBlocked, host)
	}
	if !validHost(host) {
		return fmt.Errorf("%w: %q is not a host name", ErrBlocked, host)
	}
	return nil
}

// control is the dialer hook: it sees the address actually being dialled.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBlocked, err)
	}
	return p.CheckAddr(ap.Addr())
}

// DialContext dials tenant-chosen destinations: hosts on the operator's
// host allowlist directly, everything else through a dialer whose Control
// hook checks every address it connects to.
func (p *Policy) DialContext(timeout, keepAlive time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	plain := &net.Dialer{Timeout: timeout, KeepAlive: keepAlive}
	guarded := &net.Dialer{Timeout: timeout, KeepAlive: keepAlive, Control: p.control}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err == nil && p.allowedHost(host) {
			return plain.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
}
