package e2e

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// pgCluster is a Postgres cluster of the test's own (initdb, pg_ctl), so a
// test can stop and start it without touching the machine's server. It
// runs as the postgres user (Postgres refuses root) and listens on a Unix
// socket in its own directory only: no TCP port is picked, none can clash.
type pgCluster struct {
	t      *testing.T
	bin    string // directory of initdb, pg_ctl
	dir    string // socket directory and parent of data/
	asUser []string
}

// startPostgres initdbs and starts a private cluster, stopped and removed
// when the test ends. Without the Postgres server binaries, or a way to run
// them as postgres, the test is skipped (failed with REQUIRE_DB=1).
func startPostgres(t *testing.T) *pgCluster {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("REQUIRE_DB") == "1" {
			t.Fatalf("private Postgres cluster: "+format, args...)
		}
		t.Skipf("private Postgres cluster: "+format, args...)
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			bins = []string{p}
		} else {
			skip("initdb not found")
		}
	}
	sort.Strings(bins)
	c := &pgCluster{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	pg, err := user.Lookup("postgres")
	if err != nil {
		skip("no postgres user: %v", err)
	}
	switch me, _ := user.Current(); {
	case me != nil && me.Uid == pg.Uid:
	case os.Geteuid() == 0:
		c.asUser = []string{"runuser", "-u", "postgres", "--"}
	default:
		skip("neither root nor postgres")
	}
	dir, err := os.MkdirTemp("", "e2e-pg")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "stop")
		_ = os.RemoveAll(dir)
	})
	if err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	c.start()
	return c
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// run runs a Postgres binary as the postgres user.
func (c *pgCluster) run(name string, args ...string) error {
	argv := append(append(append([]string(nil), c.asUser...), filepath.Join(c.bin, name)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v\n%s", name, err, out.String())
	}
	return nil
}

// start starts the cluster and waits until it accepts connections.
func (c *pgCluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -c fsync=off -c synchronous_commit=off -c max_connections=200", c.dir)
	if err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		c.t.Fatal(err)
	}
}

// stop stops the cluster (fast shutdown: sessions are cut, as in a crash
// of the connections; the data stays).
func (c *pgCluster) stop() {
	c.t.Helper()
	if err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop"); err != nil {
		c.t.Fatal(err)
	}
}

// url is the URL of database name on the cluster (created by the gateway
// at start).
func (c *pgCluster) url(name string) string {
	q := url.Values{"host": {c.dir}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + name + "?" + q.Encode()
}
