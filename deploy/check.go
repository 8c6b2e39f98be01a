package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/mod/modfile"
)

// Repo is the repository under check: the files on disk under Root, with
// Files replacing some of them (by path relative to Root) and Removed hiding
// others. The tests feed broken variants of the real files this way.
type Repo struct {
	Root    string
	Files   map[string]string
	Removed map[string]bool
}

func (r Repo) read(rel string) ([]byte, error) {
	rel = filepath.ToSlash(path.Clean(rel))
	if r.Removed[rel] {
		return nil, fs.ErrNotExist
	}
	if s, ok := r.Files[rel]; ok {
		return []byte(s), nil
	}
	return os.ReadFile(filepath.Join(r.Root, rel))
}

func (r Repo) isFile(rel string) bool {
	rel = filepath.ToSlash(path.Clean(rel))
	if r.Removed[rel] {
		return false
	}
	if _, ok := r.Files[rel]; ok {
		return true
	}
	st, err := os.Stat(filepath.Join(r.Root, rel))
	return err == nil && st.Mode().IsRegular()
}

func (r Repo) isDir(rel string) bool {
	st, err := os.Stat(filepath.Join(r.Root, rel))
	return err == nil && st.IsDir()
}

// Options selects the slow checks.
type Options struct {
	// Replay runs each Dockerfile's builder stage in a scratch directory
	// under ScratchDir (go mod download, go build).
	Replay     bool
	ScratchDir string
}

// Result is one check: its identifier (what the tests look for), whether it
// passed, and what it looked at.
type Result struct {
	ID  string
	OK  bool
	Msg string
}

func (r Result) String() string {
	if r.OK {
		return "ok   " + r.ID + ": " + r.Msg
	}
	return "FAIL " + r.ID + ": " + r.Msg
}

// Report collects results.
type Report struct{ Results []Result }

func (rep *Report) check(id string, ok bool, format string, args ...any) bool {
	rep.Results = append(rep.Results, Result{ID: id, OK: ok, Msg: fmt.Sprintf(format, args...)})
	return ok
}

// Failed returns the failed results.
func (rep *Report) Failed() []Result {
	var out []Result
	for _, r := range rep.Results {
		if !r.OK {
			out = append(out, r)
		}
	}
	return out
}

// Check runs every check on repo.
func Check(ctx context.Context, repo Repo, opt Options) *Report {
	rep := &Report{}
	work, err := readGoWork(repo)
	if !rep.check("gowork.parse", err == nil, "go.work parses (%v)", err) {
		return rep
	}
	ign := checkDockerignore(rep, repo)
	exposed := map[string][]int{}
	for _, s := range goServices {
		if s.image != s.name {
			continue
		}
		exposed[s.name] = checkDockerfile(ctx, rep, repo, work, ign, s, opt)
	}
	checkCompose(ctx, rep, repo, exposed)
	checkMakeBuild(rep, repo)
	return rep
}

// checkMakeBuild: make build links each service's binary as its image
// does (CGO_ENABLED=0, statically), so that make run, make bench, make soak
// and make overload measure the binary that ships. A cgo build maps libc and
// the dynamic loader besides (1.4 MiB of the gateway's RSS under load) and
// starts its threads through libc (docs/benchmarks.md, "Issue 13: RSS,
// fourth session").
func checkMakeBuild(rep *Report, repo Repo) {
	data, err := repo.read("Makefile")
	if !rep.check("makefile.exists", err == nil, "Makefile exists (%v)", err) {
		return
	}
	var recipe []string
	in := false
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "build:"):
			in = true
		case in && strings.HasPrefix(l, "\t"):
			recipe = append(recipe, strings.TrimSpace(l))
		case in && strings.TrimSpace(l) != "":
			in = false
		}
	}
	for _, s := range goServices {
		if s.image != s.name {
			continue
		}
		line := ""
		for _, l := range recipe {
			if strings.Contains(l, " build ") && strings.HasSuffix(l, " "+s.target) {
				line = l
			}
		}
		if rep.check("makefile.build", line != "", "make build builds %s", s.target) {
			rep.check("makefile.build-static", strings.HasPrefix(line, "CGO_ENABLED=0 "), "make build builds %s with CGO_ENABLED=0 like its image (%q)", s.target, line)
		}
	}
}

// goWork is what the Dockerfiles must agree with in go.work.
type goWork struct {
	goMinor string   // "1.26" of "go 1.26.8"
	uses    []string // module directories, cleaned, relative to the root
}

func readGoWork(repo Repo) (goWork, error) {
	data, err := repo.read("go.work")
	if err != nil {
		return goWork{}, err
	}
	wf, err := modfile.ParseWork("go.work", data, nil)
	if err != nil {
		return goWork{}, err
	}
	if wf.Go == nil {
		return goWork{}, errors.New("go.work has no go line")
	}
	v := strings.SplitN(wf.Go.Version, ".", 3)
	w := goWork{goMinor: strings.Join(v[:min(2, len(v))], ".")}
	for _, u := range wf.Use {
		w.uses = append(w.uses, path.Clean(u.Path))
	}
	return w, nil
}

// ------------------------------------------------------------ .dockerignore

// ignoreMatcher says whether a context path is excluded by .dockerignore.
type ignoreMatcher struct {
	pm *patternmatcher.PatternMatcher
}

func (m ignoreMatcher) ignored(rel string) bool {
	if m.pm == nil {
		return false
	}
	ok, _ := m.pm.MatchesOrParentMatches(filepath.ToSlash(path.Clean(rel)))
	return ok
}

func checkDockerignore(rep *Report, repo Repo) ignoreMatcher {
	data, err := repo.read(".dockerignore")
	if !rep.check("dockerignore.exists", err == nil, ".dockerignore exists at the repo root (the build context)") {
		return ignoreMatcher{}
	}
	pats, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err == nil {
		var pm *patternmatcher.PatternMatcher
		pm, err = patternmatcher.New(pats)
		if err == nil {
			m := ignoreMatcher{pm}
			for _, p := range ignoredPaths {
				rep.check("dockerignore.excludes", m.ignored(p), ".dockerignore excludes %s", p)
			}
			for _, p := range keptPaths {
				rep.check("dockerignore.keeps", !m.ignored(p), ".dockerignore keeps %s", p)
			}
			return m
		}
	}
	rep.check("dockerignore.exists", false, ".dockerignore parses: %v", err)
	return ignoreMatcher{}
}

// ------------------------------------------------------------ Dockerfiles

type stage struct {
	instructions.Stage
}

func (s stage) commands(name string) []instructions.Command {
	var out []instructions.Command
	for _, c := range s.Commands {
		if strings.EqualFold(c.Name(), name) {
			out = append(out, c)
		}
	}
	return out
}

func parseDockerfile(data []byte) ([]stage, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	sts, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, err
	}
	out := make([]stage, len(sts))
	for i, s := range sts {
		out[i] = stage{s}
	}
	return out, nil
}

// runLine is a RUN's shell command.
func runLine(c *instructions.RunCommand) string { return strings.Join(c.CmdLine, " ") }

// checkDockerfile checks s's Dockerfile and returns the ports its final
// stage exposes.
func checkDockerfile(ctx context.Context, rep *Report, repo Repo, work goWork, ign ignoreMatcher, s goService, opt Options) []int {
	df := s.dockerfile
	data, err := repo.read(df)
	if !rep.check("dockerfile.exists", err == nil, "%s exists", df) {
		return nil
	}
	stages, err := parseDockerfile(data)
	if !rep.check("dockerfile.parse", err == nil, "%s parses (%v)", df, err) {
		return nil
	}
	if !rep.check("dockerfile.multistage", len(stages) >= 2, "%s is multi-stage (%d stages)", df, len(stages)) {
		return nil
	}
	build, final := stages[0], stages[len(stages)-1]
	want := "golang:" + work.goMinor + "-bookworm"
	rep.check("dockerfile.builder-image", build.BaseName == want, "%s builder image %s (want %s, from go.work)", df, build.BaseName, want)
	rep.check("dockerfile.final-image", strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") || strings.HasPrefix(final.BaseName, "debian:"),
		"%s final image %s is distroless/static or debian", df, final.BaseName)

	var user string
	for _, c := range final.commands("user") {
		user = c.(*instructions.UserCommand).User
	}
	nonroot := (user != "" && !slices.Contains([]string{"root", "0"}, strings.SplitN(user, ":", 2)[0])) ||
		(user == "" && strings.HasSuffix(final.BaseName, ":nonroot"))
	rep.check("dockerfile.nonroot", nonroot, "%s final stage runs as a non-root user (USER %q, image %s)", df, user, final.BaseName)

	var entry []string
	var entryShell bool
	for _, c := range final.commands("entrypoint") {
		e := c.(*instructions.EntrypointCommand)
		entry, entryShell = e.CmdLine, e.PrependShell
	}
	rep.check("dockerfile.entrypoint", !entryShell && slices.Equal(entry, []string{"/app"}), `%s ENTRYPOINT ["/app"] (got %q)`, df, entry)

	var ports []int
	for _, c := range final.commands("expose") {
		for _, p := range c.(*instructions.ExposeCommand).Ports {
			if n, err := strconv.Atoi(strings.SplitN(p, "/", 2)[0]); err == nil {
				ports = append(ports, n)
			}
		}
	}
	rep.check("dockerfile.expose", len(ports) > 0, "%s EXPOSE %v", df, ports)

	for _, c := range final.commands("env") {
		for _, kv := range c.(*instructions.EnvCommand).Env {
			rep.check("dockerfile.env-contract", contract[kv.Key], "%s ENV %s is in the run contract", df, kv.Key)
			rep.check("dockerfile.env-read", readsVar(ctx, repo, s.target, kv.Key), "%s ENV %s is read by %s", df, kv.Key, s.target)
		}
	}

	// The builder's go build.
	var builds []string
	for _, c := range build.commands("run") {
		if l := runLine(c.(*instructions.RunCommand)); strings.Contains(l, "go build") {
			builds = append(builds, l)
		}
	}
	if rep.check("dockerfile.one-go-build", len(builds) == 1, "%s builder has one go build (%d)", df, len(builds)) {
		fields := strings.Fields(builds[0])
		target := fields[len(fields)-1]
		rep.check("dockerfile.build-target", target == s.target, "%s go build target %s (want %s)", df, target, s.target)
		rep.check("dockerfile.build-target-exists", repo.isDir(target), "test -d %s", target)
		for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-ldflags='-s -w'", "-o /out/app"} {
			rep.check("dockerfile.build-flags", strings.Contains(builds[0], flag), "%s go build uses %s", df, flag)
		}
	}

	// Every go.mod/go.sum of the workspace is copied before go mod download.
	copied := map[string]bool{}
	download := false
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			if strings.Contains(runLine(c), "go mod download") {
				download = true
			}
		case *instructions.CopyCommand:
			if download || c.From != "" {
				continue
			}
			for _, src := range c.SourcePaths {
				for _, m := range globContext(repo, src) {
					copied[m] = true
				}
				copied[path.Clean(src)] = true
			}
		}
		if download {
			break
		}
	}
	rep.check("dockerfile.mod-download", download, "%s builder runs go mod download", df)
	rep.check("dockerfile.copy-gowork", copied["go.work"], "%s copies go.work before go mod download", df)
	if repo.isFile("go.work.sum") {
		rep.check("dockerfile.copy-gowork", copied["go.work.sum"], "%s copies go.work.sum before go mod download", df)
	}
	for _, u := range work.uses {
		for _, f := range []string{"go.mod", "go.sum"} {
			p := path.Join(u, f)
			if repo.isFile(p) {
				rep.check("dockerfile.copy-modules", copied[p], "%s copies %s before go mod download", df, p)
			}
		}
	}

	if opt.Replay {
		replay(ctx, rep, repo, ign, s, build, final, filepath.Join(opt.ScratchDir, s.name))
	}
	return ports
}

// globContext expands a COPY source against the build context (files on
// disk and replaced files), as relative paths.
func globContext(repo Repo, pattern string) []string {
	pattern = path.Clean(strings.TrimPrefix(pattern, "/"))
	var out []string
	disk, _ := filepath.Glob(filepath.Join(repo.Root, filepath.FromSlash(pattern)))
	for _, d := range disk {
		rel, err := filepath.Rel(repo.Root, d)
		if err == nil && !repo.Removed[filepath.ToSlash(rel)] {
			out = append(out, filepath.ToSlash(rel))
		}
	}
	for f := range repo.Files {
		if ok, _ := path.Match(pattern, f); ok && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}
