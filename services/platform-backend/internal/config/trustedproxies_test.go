package config

import (
	"strings"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	env := map[string]string{"APP_ENV": "dev", "TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,10.1.2.3/8"}
	c, err := Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.7/32 2001:db8::/32 10.0.0.0/8"; strings.Join(got, " ") != want {
		t.Errorf("TrustedProxies = %v, want %s", got, want)
	}
	env["TRUSTED_PROXIES"] = "10.0.0.0/8,proxy.internal"
	if _, err := Load(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Errorf("bad TRUSTED_PROXIES: err = %v", err)
	}
	delete(env, "TRUSTED_PROXIES")
	if c, err := Load(func(k string) string { return env[k] }); err != nil || len(c.TrustedProxies) != 0 {
		t.Errorf("default TrustedProxies = %v, %v; want none", c.TrustedProxies, err)
	}
}
