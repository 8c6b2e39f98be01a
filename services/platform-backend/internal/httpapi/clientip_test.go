package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "203.0.113.5:4321", nil, "203.0.113.5"},
		{"untrusted peer: XFF ignored", "203.0.113.5:4321", []string{"1.2.3.4"}, "203.0.113.5"},
		{"trusted peer, no XFF", "10.1.2.3:80", nil, "10.1.2.3"},
		{"trusted peer", "10.1.2.3:80", []string{"198.51.100.7"}, "198.51.100.7"},
		{"client spoofs the left end", "10.1.2.3:80", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", "10.1.2.3:80", []string{"198.51.100.7, 10.4.4.4", "10.5.5.5"}, "198.51.100.7"},
		{"all hops trusted", "10.1.2.3:80", []string{"10.4.4.4"}, "10.4.4.4"},
		{"garbage beyond the proxy", "10.1.2.3:80", []string{"198.51.100.7, not-an-ip"}, "10.1.2.3"},
		{"ipv6 peer", "[::1]:443", []string{"2001:db8::1"}, "2001:db8::1"},
		{"ipv4-mapped", "[::ffff:10.1.2.3]:80", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"hop with port", "10.1.2.3:80", []string{"198.51.100.7:5555"}, "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, trusted).String(); got != tc.want {
				t.Errorf("clientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}
