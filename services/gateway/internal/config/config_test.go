package config

import (
	"runtime/debug"
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

// TestStopAndKeepAliveSettings: the drain delay defaults to 5 s and the
// stream keep-alive interval to 15 s; 0 turns either off; a negative value,
// or a keep-alive interval under 100 ms, is refused.
func TestStopAndKeepAliveSettings(t *testing.T) {
	t.Parallel()
	load := func(kv ...string) (Config, error) {
		env := map[string]string{"APP_ENV": "dev"}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return Load(func(k string) string { return env[k] })
	}
	c, err := load()
	if err != nil || c.DrainDelay != 5*time.Second || c.StreamKeepAlive != 15*time.Second {
		t.Fatalf("defaults: %v, drain %s, keep-alive %s", err, c.DrainDelay, c.StreamKeepAlive)
	}
	c, err = load("SHUTDOWN_DRAIN_DELAY", "0", "STREAM_KEEPALIVE_INTERVAL", "0s")
	if err != nil || c.DrainDelay != 0 || c.StreamKeepAlive != 0 {
		t.Fatalf("off: %v, drain %s, keep-alive %s", err, c.DrainDelay, c.StreamKeepAlive)
	}
	for _, kv := range [][2]string{{"SHUTDOWN_DRAIN_DELAY", "-1s"}, {"STREAM_KEEPALIVE_INTERVAL", "10ms"}, {"STREAM_KEEPALIVE_INTERVAL", "15"}} {
		if _, err := load(kv[0], kv[1]); err == nil || !strings.Contains(err.Error(), kv[0]+" must be 0 (off)") {
			t.Errorf("%s=%s: err %v", kv[0], kv[1], err)
		}
	}
}

// TestOwnSoftLimitIsNotTheMemory: the soft limit the gateway sets itself
// (GATEWAY_MEMORY_LIMIT, here 40 MiB) must not shrink the proxy's
// bounds, which follow GOMEMLIMIT, the cgroup or the machine: a 10 MiB
// bound on buffered request bytes would refuse a single 32 MiB body.
func TestOwnSoftLimitIsNotTheMemory(t *testing.T) {
	prev := debug.SetMemoryLimit(40 << 20)
	defer debug.SetMemoryLimit(prev)
	c, err := Load(func(k string) string { return map[string]string{"APP_ENV": "dev"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if want := cgroupMemory() / 5 * 4; c.MemoryLimit != want {
		t.Errorf("default soft limit = %d, want 4/5 of the cgroup's memory.max (%d; 0 without one)", c.MemoryLimit, want)
	}
	if c.ProxyMaxBuffered <= 40<<20/4 {
		t.Errorf("PROXY_MAX_BUFFERED_BYTES default %d follows the gateway's own soft limit", c.ProxyMaxBuffered)
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

// TestIngesterDefaultsByRole: role all ingests in one paced loop of
// 128 KiB batches (its memory under load); a dedicated ingester in two
// loops of 3 MiB, flat out; INGESTER_FETCH_BYTES overrides either.
func TestIngesterDefaultsByRole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		role, fetch, delay string
		workers, bytes     int
		duty               float64
		maxDelay           time.Duration
	}{
		{role: "all", workers: 1, bytes: 128 << 10, duty: 0.5, maxDelay: 5 * time.Second},
		{role: "ingester", workers: 2, bytes: 3 << 20, duty: 1, maxDelay: 0},
		{role: "all", fetch: "524288", delay: "0", workers: 1, bytes: 512 << 10, duty: 0.5, maxDelay: 0},
		{role: "ingester", delay: "2s", workers: 2, bytes: 3 << 20, duty: 1, maxDelay: 2 * time.Second},
	} {
		env := map[string]string{"APP_ENV": "dev", "GATEWAY_ROLE": tc.role, "INGESTER_FETCH_BYTES": tc.fetch, "INGESTER_MAX_DELAY": tc.delay}
		c, err := Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", tc.role, err)
		}
		if c.IngesterWorkers != tc.workers || c.IngesterFetchBytes != tc.bytes || c.IngesterDuty != tc.duty || c.IngesterMaxDelay != tc.maxDelay ||
			c.IngesterBusyRate != 50 {
			t.Errorf("role %s, INGESTER_FETCH_BYTES %q, INGESTER_MAX_DELAY %q: workers %d, fetch %d, duty %g, max delay %v, busy rate %g; want %d, %d, %g, %v, 50",
				tc.role, tc.fetch, tc.delay, c.IngesterWorkers, c.IngesterFetchBytes, c.IngesterDuty, c.IngesterMaxDelay, c.IngesterBusyRate,
				tc.workers, tc.bytes, tc.duty, tc.maxDelay)
		}
	}
	for _, bad := range []map[string]string{{"INGESTER_MAX_DELAY": "50ms"}, {"INGESTER_MAX_DELAY": "-1s"}, {"INGESTER_BUSY_RATE": "0"},
		{"INGESTER_BUSY_RATE": "Inf"}, {"INGESTER_BUSY_RATE": "NaN"}, {"INGESTER_BUSY_RATE": "fast"}} {
		bad["APP_ENV"] = "dev"
		if _, err := Load(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v: loaded, want an error naming the variable", bad)
		} else {
			for k := range bad {
				if k != "APP_ENV" && !strings.Contains(err.Error(), k) {
					t.Errorf("%v: error %q does not name %s", bad, err, k)
				}
			}
		}
	}
}
