package config

import (
	"strings"
	"testing"
	"time"
)

// TestServerLimits: the header and body deadlines default to 10 s and 30 s,
// the internal listener to loopback; a non-positive deadline is refused, and
// so is the former DEBUG_ADDR (pprof moved to the internal listener).
func TestServerLimits(t *testing.T) {
	t.Parallel()
	load := func(kv ...string) (Config, error) {
		env := map[string]string{"APP_ENV": "dev"}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return Load(func(k string) string { return env[k] })
	}
	c, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if c.ReadHeaderTimeout != 10*time.Second || c.BodyReadTimeout != 30*time.Second || c.InternalAddr != "127.0.0.1:9181" {
		t.Errorf("defaults: header %s, body %s, internal %q", c.ReadHeaderTimeout, c.BodyReadTimeout, c.InternalAddr)
	}
	c, err = load("READ_HEADER_TIMEOUT", "2s", "BODY_READ_TIMEOUT", "500ms", "GATEWAY_INTERNAL_ADDR", "0.0.0.0:9999")
	if err != nil || c.ReadHeaderTimeout != 2*time.Second || c.BodyReadTimeout != 500*time.Millisecond || c.InternalAddr != "0.0.0.0:9999" {
		t.Errorf("set: %v %s %s %q", err, c.ReadHeaderTimeout, c.BodyReadTimeout, c.InternalAddr)
	}
	for _, kv := range [][2]string{{"READ_HEADER_TIMEOUT", "0s"}, {"BODY_READ_TIMEOUT", "-1s"}, {"BODY_READ_TIMEOUT", "soon"}} {
		if _, err := load(kv[0], kv[1]); err == nil || !strings.Contains(err.Error(), kv[0]+" must be a positive duration") {
			t.Errorf("%s=%s: err %v", kv[0], kv[1], err)
		}
	}
	if _, err := load("DEBUG_ADDR", "127.0.0.1:6060"); err == nil || !strings.Contains(err.Error(), "GATEWAY_INTERNAL_ADDR") {
		t.Errorf("DEBUG_ADDR: err %v", err)
	}
}

// TestJournalDir: the usage journal defaults to the spool directory's
// journal/ (in Kubernetes, the spool's volume), GATEWAY_JOURNAL_DIR moves
// it, "off" turns it off; its bound defaults to 64 MiB.
func TestJournalDir(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ spool, journal, want string }{
		{"", "", "data/spool/journal"},
		{"/var/lib/gateway/spool", "", "/var/lib/gateway/spool/journal"},
		{"/s", "/j", "/j"},
		{"/s", "off", ""},
	} {
		env := map[string]string{"APP_ENV": "dev", "GATEWAY_SPOOL_DIR": tc.spool, "GATEWAY_JOURNAL_DIR": tc.journal}
		c, err := Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if c.JournalDir != tc.want || c.JournalMaxBytes != 64<<20 {
			t.Errorf("spool %q journal %q: JournalDir %q (%d bytes), want %q", tc.spool, tc.journal, c.JournalDir, c.JournalMaxBytes, tc.want)
		}
	}
}
