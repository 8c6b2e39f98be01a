// Package listenfd passes listening sockets from a parent process to a
// child, with the environment of systemd's socket activation
// (sd_listen_fds(3)): the child finds LISTEN_FDS inherited descriptors
// starting at descriptor 3, named by LISTEN_FDNAMES (colon-separated).
//
// Tests use it to start the real binaries on sockets they bound on
// 127.0.0.1:0 themselves, so no port is ever guessed; a service manager can
// use it the same way. Without LISTEN_FDS nothing changes: services bind
// their configured addresses.
//
// One difference from systemd: LISTEN_PID is optional. A parent using
// os/exec cannot know the child's pid before it starts, so it leaves
// LISTEN_PID out (Pass does); when LISTEN_PID is set and is not this
// process's pid, the descriptors were meant for another process and are
// ignored, as systemd does.
package listenfd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// firstFD is the first inherited descriptor (after stdin, stdout, stderr).
const firstFD = 3

// maxFDs bounds LISTEN_FDS (a garbled value must not make us open every
// descriptor of the process).
const maxFDs = 64

// Named is a listener and the name it is passed under.
type Named struct {
	Name     string
	Listener net.Listener
}

// Pass arranges for cmd's process to inherit the listeners, in order, at
// descriptors 3, 4, … with LISTEN_FDS and LISTEN_FDNAMES in its environment.
// It must be called before cmd.Start and replaces cmd.ExtraFiles. The
// caller keeps its listeners (the child gets duplicates) and may close them
// once the child has started, or keep them to hand to a restarted child.
// cmd.Env must be set (Pass appends to it).
func Pass(cmd *exec.Cmd, ls ...Named) error {
	if cmd.Env == nil {
		return errors.New("listenfd: cmd.Env must be set")
	}
	files := make([]*os.File, 0, len(ls))
	names := make([]string, 0, len(ls))
	for _, l := range ls {
		if l.Name == "" || strings.ContainsAny(l.Name, ":\x00") {
			closeAll(files)
			return fmt.Errorf("listenfd: bad name %q", l.Name)
		}
		fl, ok := l.Listener.(interface{ File() (*os.File, error) })
		if !ok {
			closeAll(files)
			return fmt.Errorf("listenfd: %s: a %T has no descriptor", l.Name, l.Listener)
		}
		f, err := fl.File()
		if err != nil {
			closeAll(files)
			return fmt.Errorf("listenfd: %s: %w", l.Name, err)
		}
		files = append(files, f)
		names = append(names, l.Name)
	}
	cmd.ExtraFiles = files
	cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
	return nil
}

// CloseFiles closes the parent's copies of the descriptors Pass made, once
// cmd has started (the child holds its own).
func CloseFiles(cmd *exec.Cmd) {
	closeAll(cmd.ExtraFiles)
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// fdName is one inherited descriptor and its name.
type fdName struct {
	fd   int
	name string
}

// parse reads the socket-activation environment of process pid: the
// descriptors passed and their names ("unknown" when LISTEN_FDNAMES gives
// none, as systemd names them). No LISTEN_FDS, or a LISTEN_PID of another
// process, is no descriptor.
func parse(getenv func(string) string, pid int) ([]fdName, error) {
	nfds := getenv("LISTEN_FDS")
	if nfds == "" {
		return nil, nil
	}
	if p := getenv("LISTEN_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("listenfd: LISTEN_PID=%q is not a pid", p)
		}
		if n != pid {
			return nil, nil
		}
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n < 0 || n > maxFDs {
		return nil, fmt.Errorf("listenfd: LISTEN_FDS=%q is not a count of 0 to %d", nfds, maxFDs)
	}
	var names []string
	if s := getenv("LISTEN_FDNAMES"); s != "" {
		names = strings.Split(s, ":")
		if len(names) != n {
			return nil, fmt.Errorf("listenfd: LISTEN_FDNAMES has %d names for %d descriptors", len(names), n)
		}
	}
	out := make([]fdName, n)
	seen := map[string]bool{}
	for i := range out {
		out[i] = fdName{fd: firstFD + i, name: "unknown"}
		if names != nil {
			out[i].name = names[i]
		}
		if out[i].name != "unknown" && seen[out[i].name] {
			return nil, fmt.Errorf("listenfd: name %q passed twice", out[i].name)
		}
		seen[out[i].name] = true
	}
	return out, nil
}

// Listeners returns the listeners this process inherited, by name (see the
// package doc); none (a nil map) without LISTEN_FDS. Every descriptor must
// be named. The inherited
// descriptors are closed: the listeners hold duplicates marked
// close-on-exec. On error every listener made so far is closed.
func Listeners(getenv func(string) string) (map[string]net.Listener, error) {
	fds, err := parse(getenv, os.Getpid())
	if err != nil || len(fds) == 0 {
		return nil, err
	}
	out := make(map[string]net.Listener, len(fds))
	fail := func(err error) (map[string]net.Listener, error) {
		for _, l := range out {
			_ = l.Close()
		}
		return nil, err
	}
	for _, d := range fds {
		f := os.NewFile(uintptr(d.fd), "listen-fd-"+d.name)
		l, err := net.FileListener(f)
		_ = f.Close()
		if err != nil {
			return fail(fmt.Errorf("listenfd: descriptor %d (%s): %w", d.fd, d.name, err))
		}
		if d.name == "unknown" {
			_ = l.Close()
			return fail(fmt.Errorf("listenfd: descriptor %d has no name (set LISTEN_FDNAMES)", d.fd))
		}
		out[d.name] = l
	}
	return out, nil
}

// Take returns the inherited listeners named in want (a name not handed
// down maps to nil). Any other inherited listener is closed and reported as
// an error naming service, as are the wanted ones then, so that a parent
// cannot hand over a socket nobody serves.
func Take(getenv func(string) string, service string, want ...string) (map[string]net.Listener, error) {
	named, err := Listeners(getenv)
	if err != nil {
		return nil, err
	}
	out := make(map[string]net.Listener, len(want))
	for _, w := range want {
		out[w] = named[w]
		delete(named, w)
	}
	for name, l := range named {
		_ = l.Close()
		err = errors.Join(err, fmt.Errorf("inherited listener %q: %s takes %s", name, service, strings.Join(want, " and ")))
	}
	if err != nil {
		for _, l := range out {
			if l != nil {
				_ = l.Close()
			}
		}
		return nil, err
	}
	return out, nil
}

// Or returns l, or a new TCP listener on addr when l is nil; what names the
// listener in errors.
func Or(l net.Listener, addr, what string) (net.Listener, error) {
	if l != nil {
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen %s: %w", what, addr, err)
	}
	return l, nil
}
