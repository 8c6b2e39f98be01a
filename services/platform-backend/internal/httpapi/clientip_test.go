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
		viewer       string
	}{
		{name: "cloudfront viewer address from a trusted edge", remote: "10.1.2.3:80", xff: []string{"6.6.6.6"}, viewer: "198.51.100.9:50000", want: "198.51.100.9"},
		{name: "cloudfront viewer address ipv6", remote: "10.1.2.3:80", viewer: "2001:db8::7:443", want: "2001:db8::7"},
		{name: "viewer address from an untrusted peer is ignored", remote: "203.0.113.5:4321", viewer: "198.51.100.9:1", want: "203.0.113.5"},
		{name: "garbage viewer address falls back to XFF", remote: "10.1.2.3:80", xff: []string{"198.51.100.7"}, viewer: "nonsense", want: "198.51.100.7"},
		{"no proxy", "203.0.113.5:4321", nil, "203.0.113.5", ""},
		{"untrusted peer: XFF ignored", "203.0.113.5:4321", []string{"1.2.3.4"}, "203.0.113.5", ""},
		{"trusted peer, no XFF", "10.1.2.3:80", nil, "10.1.2.3", ""},
		{"trusted peer", "10.1.2.3:80", []string{"198.51.100.7"}, "198.51.100.7", ""},
		{"client spoofs the left end", "10.1.2.3:80", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7", ""},
		{"chain of trusted proxies", "10.1.2.3:80", []string{"198.51.100.7, 10.4.4.4", "10.5.5.5"}, "198.51.100.7", ""},
		{"all hops trusted", "10.1.2.3:80", []string{"10.4.4.4"}, "10.4.4.4", ""},
		{"garbage beyond the proxy", "10.1.2.3:80", []string{"198.51.100.7, not-an-ip"}, "10.1.2.3", ""},
		{"ipv6 peer", "[::1]:443", []string{"2001:db8::1"}, "2001:db8::1", ""},
		{"ipv4-mapped", "[::ffff:10.1.2.3]:80", []string{"::ffff:198.51.100.7"}, "198.51.100.7", ""},
		{"hop with port", "10.1.2.3:80", []string{"198.51.100.7:5555"}, "198.51.100.7", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tc.viewer != "" {
				r.Header.Set("CloudFront-Viewer-Address", tc.viewer)
			}
			if got := clientAddr(r, trusted).String(); got != tc.want {
				t.Errorf("clientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}
