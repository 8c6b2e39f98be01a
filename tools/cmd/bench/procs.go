package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// procs starts and stops the processes of one benchmark run, each with its
// output in logDir/NAME.log.
type procs struct {
	who    string
	logDir string
	byName map[string]*proc
	order  []string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func newProcs(who, logDir string) *procs {
	return &procs{who: who, logDir: logDir, byName: map[string]*proc{}}
}

// start runs bin with the environment env (added to this process's).
func (ps *procs) start(name, bin string, env []string, args ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(ps.logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	ps.byName[name] = p
	ps.order = append(ps.order, name)
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then SIGKILL.
func (ps *procs) stop(name string, grace time.Duration) {
	p := ps.byName[name]
	if p == nil {
		return
	}
	delete(ps.byName, name)
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// stopAll stops the processes still running, the named ones first, then the
// others in reverse start order.
func (ps *procs) stopAll(first ...string) {
	for _, n := range first {
		ps.stop(n, 10*time.Second)
	}
	for i := len(ps.order) - 1; i >= 0; i-- {
		ps.stop(ps.order[i], 10*time.Second)
	}
}

// tails prints the last lines of every log (after a failure).
func (ps *procs) tails(n int) {
	ents, _ := os.ReadDir(ps.logDir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(ps.logDir, e.Name()))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		lines = lines[max(0, len(lines)-n):]
		fmt.Fprintf(os.Stderr, "--- %s\n%s\n", e.Name(), strings.Join(lines, "\n"))
	}
}

// waitHTTP polls url until it answers 2xx (30 s), failing early when p exits.
func waitHTTP(ctx context.Context, url string, p *proc) error {
	c := &http.Client{Timeout: time.Second}
	for range 150 {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v); see its log", p.name, p.err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not become healthy at %s", p.name, url)
}

// portFree reports whether nothing accepts connections on addr.
func portFree(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// sleepCtx sleeps d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
