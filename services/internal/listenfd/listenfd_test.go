package listenfd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as the child process of TestPassToChild: with
// LISTENFD_TEST_CHILD set it serves the listeners it inherited.
func TestMain(m *testing.M) {
	if os.Getenv("LISTENFD_TEST_CHILD") != "" {
		if err := serveChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveChild answers one connection on each inherited listener with the
// listener's name, then exits.
func serveChild() error {
	ls, err := Listeners(os.Getenv)
	if err != nil {
		return err
	}
	if len(ls) == 0 {
		return errors.New("no inherited listeners")
	}
	// Each listener is served on its own: the parent dials them in its own
	// order (ranging over the map in turn would deadlock one time in two).
	errs := make(chan error, len(ls))
	for name, l := range ls {
		go func() {
			c, err := l.Accept()
			if err == nil {
				_, _ = io.WriteString(c, name+"\n")
				_ = c.Close()
			}
			_ = l.Close()
			errs <- err
		}()
	}
	var first error
	for range ls {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestParse(t *testing.T) {
	const pid = 4242
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    []fdName
		wantErr string
	}{
		{name: "absent", env: map[string]string{}},
		{name: "named", env: map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:grpc"},
			want: []fdName{{3, "http"}, {4, "grpc"}}},
		{name: "own pid", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "4242", "LISTEN_FDNAMES": "http"},
			want: []fdName{{3, "http"}}},
		{name: "another process's", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "17", "LISTEN_FDNAMES": "http"}},
		{name: "unnamed", env: map[string]string{"LISTEN_FDS": "2"}, want: []fdName{{3, "unknown"}, {4, "unknown"}}},
		{name: "zero", env: map[string]string{"LISTEN_FDS": "0"}, want: []fdName{}},
		{name: "garbled count", env: map[string]string{"LISTEN_FDS": "two"}, wantErr: "LISTEN_FDS"},
		{name: "negative count", env: map[string]string{"LISTEN_FDS": "-1"}, wantErr: "LISTEN_FDS"},
		{name: "huge count", env: map[string]string{"LISTEN_FDS": "100000"}, wantErr: "LISTEN_FDS"},
		{name: "garbled pid", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "me"}, wantErr: "LISTEN_PID"},
		{name: "names short", env: map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http"}, wantErr: "1 names for 2"},
		{name: "name twice", env: map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:http"}, wantErr: "passed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(env(tc.env), pid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 || len(tc.want) != 0 {
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("parse = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestListenersWithoutEnvironment(t *testing.T) {
	ls, err := Listeners(env(nil))
	if err != nil || ls != nil {
		t.Fatalf("Listeners = %v, %v; want none", ls, err)
	}
}

func TestPassRefuses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := Pass(exec.Command("true"), Named{"http", l}); err == nil {
		t.Error("Pass without cmd.Env succeeded")
	}
	cmd := exec.Command("true")
	cmd.Env = []string{}
	for _, bad := range []Named{{"", l}, {"a:b", l}, {"pipe", fakeListener{}}} {
		if err := Pass(cmd, bad); err == nil {
			t.Errorf("Pass(%q, %T) succeeded", bad.Name, bad.Listener)
		}
	}
	if len(cmd.Env) != 0 || cmd.ExtraFiles != nil {
		t.Errorf("a refused Pass changed cmd: env %v, files %v", cmd.Env, cmd.ExtraFiles)
	}
}

type fakeListener struct{ net.Listener }

// TestPassToChild: listeners bound here on port 0 serve in a child process
// under their names; the parent keeps its own copies.
func TestPassToChild(t *testing.T) {
	var ls []Named
	for _, name := range []string{"http", "grpc"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, Named{name, l})
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LISTENFD_TEST_CHILD=1")
	cmd.Stderr = os.Stderr
	if err := Pass(cmd, ls...); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	CloseFiles(cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for _, l := range ls {
		c, err := net.DialTimeout("tcp", l.Listener.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != l.Name+"\n" {
			t.Fatalf("%s listener answered %q, %v", l.Name, got, err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child did not exit")
	}
}
