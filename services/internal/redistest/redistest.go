// Package redistest gives tests a Redis: the shared local server under a key
// prefix of their own, or a private redis-server on a unix socket that the
// test may stop and restart (store outages).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// URL is the shared server tests use with their own prefixes:
// TEST_REDIS_URL or the local default. A test is skipped when it does not
// answer, unless REQUIRE_DB=1 (make test, CI) makes that a failure.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second)
	if os.Getenv("TEST_REDIS_URL") == "" && err != nil {
		unavailable(t, "redis at 127.0.0.1:6379: "+err.Error())
	}
	if c != nil {
		c.Close()
	}
	return u
}

// Prefix is a key prefix unique to this test.
func Prefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test_" + hex.EncodeToString(b[:])
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("REQUIRE_DB") == "1" {
		t.Fatalf("%s (REQUIRE_DB=1)", why)
	}
	t.Skip(why)
}

// Server is a private redis-server keeping nothing on disk, on a unix
// socket in a temporary directory: never the shared server.
type Server struct {
	t    testing.TB
	dir  string
	sock string
	cmd  *exec.Cmd
}

// Start starts a private redis-server, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server not installed (apt-get install redis-server)")
	}
	dir, err := os.MkdirTemp("", "redis")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	t.Cleanup(func() { s.Stop(); os.RemoveAll(dir) })
	s.Restart()
	return s
}

// URL is the server's address for go-redis (and REDIS_URL).
func (s *Server) URL() string { return "unix://" + s.sock }

// Stop kills the server (a crash: nothing is saved).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
	_ = os.Remove(s.sock)
}

// Restart starts the server again (empty, as after a crash) and waits
// until it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", s.sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.Dial("unix", s.sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("redis-server did not listen on %s", s.sock)
}
