package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	allowed, _, err := Parse("10.20.0.0/16, 192.168.7.7")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr    string
		p       Policy
		blocked bool
		why     string
	}{
		{"8.8.8.8", Policy{}, false, "public"},
		{"2606:4700:4700::1111", Policy{}, false, "public v6"},
		{"127.0.0.1", Policy{}, true, "loopback"},
		{"127.9.9.9", Policy{}, true, "loopback /8"},
		{"::1", Policy{}, true, "loopback v6"},
		{"127.0.0.1", Policy{AllowLoopback: true}, false, "loopback in dev"},
		{"10.1.2.3", Policy{}, true, "private"},
		{"172.31.255.255", Policy{}, true, "private 172.16/12"},
		{"192.168.1.1", Policy{}, true, "private 192.168/16"},
		{"fd12::1", Policy{}, true, "ULA"},
		{"169.254.10.10", Policy{}, true, "link-local"},
		{"fe80::1", Policy{}, true, "link-local v6"},
		{"100.64.0.1", Policy{}, true, "CGNAT"},
		{"169.254.169.254", Policy{}, true, "metadata"},
		{"169.254.169.254", Policy{AllowLoopback: true, Allow: []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")}}, true, "metadata is never allowed"},
		{"fd00:ec2::254", Policy{Allow: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}}, true, "AWS v6 metadata never"},
		{"100.100.100.200", Policy{}, true, "Alibaba metadata"},
		{"0.0.0.0", Policy{AllowLoopback: true}, true, "unspecified"},
		{"::", Policy{AllowLoopback: true}, true, "unspecified v6"},
		{"224.0.0.1", Policy{}, true, "multicast"},
		{"255.255.255.255", Policy{}, true, "broadcast"},
		{"::ffff:127.0.0.1", Policy{}, true, "v4-mapped loopback"},
		{"::ffff:169.254.169.254", Policy{AllowLoopback: true}, true, "v4-mapped metadata"},
		{"64:ff9b::a9fe:a9fe", Policy{}, true, "NAT64 of metadata"},
		{"2002:a9fe:a9fe::1", Policy{}, true, "6to4 of metadata"},
		{"2002:0808:0808::1", Policy{}, false, "6to4 of a public address"},
		{"198.18.0.1", Policy{}, true, "benchmarking"},
		{"10.20.3.4", Policy{Allow: allowed}, false, "operator-allowed network"},
		{"10.21.3.4", Policy{Allow: allowed}, true, "outside the allowed network"},
		{"192.168.7.7", Policy{Allow: allowed}, false, "operator-allowed address"},
	} {
		err := tc.p.CheckAddr(netip.MustParseAddr(tc.addr))
		if (err != nil) != tc.blocked {
			t.Errorf("%s (%s): err = %v, want blocked=%v", tc.addr, tc.why, err, tc.blocked)
		}
		if err != nil && !errors.Is(err, ErrBlocked) {
			t.Errorf("%s: error does not wrap ErrBlocked", tc.addr)
		}
	}
}

func TestCheckURL(t *testing.T) {
	prod := Policy{RequireHTTPS: true}
	dev := Policy{AllowLoopback: true}
	_, hosts, _ := Parse(".models.internal, llm.corp")
	for _, tc := range []struct {
		url     string
		p       Policy
		blocked bool
	}{
		{"https://api.groq.com/openai/v1", prod, false},
		{"http://api.groq.com/openai/v1", prod, true},
		{"http://api.groq.com/openai/v1", dev, false},
		{"https://169.254.169.254/latest", prod, true},
		{"https://[::ffff:169.254.169.254]/", prod, true},
		{"https://10.0.0.5/v1", prod, true},
		{"https://localhost:8000/v1", prod, true},
		{"https://a.localhost/v1", prod, true},
		{"http://localhost:11434/v1", dev, false},
		{"http://127.0.0.1:11434/v1", dev, false},
		{"https://user:pw@api.example.com/", prod, true},
		{"file:///etc/passwd", dev, true},
		{"gopher://x/", dev, true},
		{"//no-scheme/", dev, true},
		{"https://bad_host/", prod, true},
		{"https://vllm.models.internal/v1", Policy{RequireHTTPS: true, AllowHosts: hosts}, false},
		{"https://models.internal/v1", Policy{RequireHTTPS: true, AllowHosts: hosts}, false},
		{"https://llm.corp/v1", Policy{RequireHTTPS: true, AllowHosts: hosts}, false},
		{"https://evilllm.corp/v1", Policy{RequireHTTPS: true, AllowHosts: hosts}, false}, // a public name: checked at dial
	} {
		if err := tc.p.CheckURL(tc.url); (err != nil) != tc.blocked {
			t.Errorf("%s: err = %v, want blocked=%v", tc.url, err, tc.blocked)
		}
	}
}

func TestParse(t *testing.T) {
	ps, hs, err := Parse("10.0.0.0/8 fd00::1 , .corp.internal,llm.example")
	if err != nil || len(ps) != 2 || len(hs) != 2 || ps[1] != netip.MustParsePrefix("fd00::1/128") || hs[0] != ".corp.internal" {
		t.Fatalf("%v %v %v", ps, hs, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "bad_host", "-x.example", "a..b"} {
		if _, _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestDialRefusesRebinding: a host name is checked on the address it
// resolves to when dialled (localhost → 127.0.0.1), not on its spelling.
func TestDialRefusesRebinding(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port} {
		if c, err := (&Policy{}).DialContext(time.Second, 0)(ctx, "tcp", addr); err == nil || !errors.Is(err, ErrBlocked) {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial %s: err %v, want ErrBlocked", addr, err)
		}
	}
	c, err := (&Policy{AllowLoopback: true}).DialContext(time.Second, 0)(ctx, "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("dev dial: %v", err)
	}
	c.Close()
	_, hosts, _ := Parse("localhost")
	c, err = (&Policy{AllowHosts: hosts}).DialContext(time.Second, 0)(ctx, "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("allowed host: %v", err)
	}
	c.Close()
}

// FuzzCheckAddr: an IPv4 address gets the same verdict in every IPv6
// spelling that embeds it (v4-mapped, NAT64, 6to4 when blocked), and
// CheckURL agrees with CheckAddr on literal hosts.
func FuzzCheckAddr(f *testing.F) {
	for _, s := range [][4]byte{{127, 0, 0, 1}, {169, 254, 169, 254}, {10, 0, 0, 1}, {8, 8, 8, 8}, {100, 64, 1, 1}, {0, 0, 0, 0}, {224, 1, 1, 1}} {
		f.Add(s[0], s[1], s[2], s[3], false)
	}
	f.Fuzz(func(t *testing.T, a, b, c, d byte, loop bool) {
		p := &Policy{AllowLoopback: loop}
		v4 := netip.AddrFrom4([4]byte{a, b, c, d})
		want := p.CheckAddr(v4) == nil
		mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: a, 13: b, 14: c, 15: d})
		nat64 := netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: a, 13: b, 14: c, 15: d})
		sixto4 := netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: a, 3: b, 4: c, 5: d, 15: 1})
		if got := p.CheckAddr(mapped) == nil; got != want {
			t.Fatalf("%s allowed=%v but mapped %s allowed=%v", v4, want, mapped, got)
		}
		if !want && (p.CheckAddr(nat64) == nil || p.CheckAddr(sixto4) == nil) {
			t.Fatalf("%s is blocked but an IPv6 embedding passes", v4)
		}
		if got := p.CheckURL("http://"+v4.String()+"/v1") == nil; got != want {
			t.Fatalf("CheckURL(%s) allowed=%v, CheckAddr %v", v4, got, want)
		}
	})
}
