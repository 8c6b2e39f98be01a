package deploy

import (
	"context"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// replay runs the builder stage of s's Dockerfile in dir: COPY from the
// build context (honouring .dockerignore) into dir/ctx, RUN with bash there,
// /out/ mapped to dir/out. Then it checks the binary and every file the
// final stage copies from the builder.
func replay(ctx context.Context, rep *Report, repo Repo, ign ignoreMatcher, s goService, build, final stage, dir string) {
	df := s.dockerfile
	ctxDir, out := filepath.Join(dir, "ctx"), filepath.Join(dir, "out")
	workdir := "/"
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GOFLAGS", "GOWORK", "CGO_ENABLED":
		default:
			env[k] = v
		}
	}
	env["GOFLAGS"] = "-modcacherw"
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			workdir = path.Join(workdir, c.Path)
			if path.IsAbs(c.Path) {
				workdir = path.Clean(c.Path)
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = kv.Value
			}
		case *instructions.ArgCommand:
			for _, a := range c.Args {
				if a.Value != nil {
					env[a.Key] = *a.Value
				}
			}
		case *instructions.CopyCommand:
			if c.From != "" || c.Chown != "" || c.Chmod != "" || c.Link || c.Parents || len(c.ExcludePatterns) > 0 {
				rep.check("replay.copy-flags", false, "%s: builder COPY with flags is not replayed: %s", df, c.String())
				return
			}
			// A literal source must exist; a pattern may match nothing as
			// long as some source does (COPY go.work go.work.sum* ./).
			var matched, missing []string
			for _, src := range c.SourcePaths {
				n := len(matched)
				for _, m := range globContext(repo, src) {
					if !ign.ignored(m) {
						matched = append(matched, m)
					}
				}
				if len(matched) == n && !strings.ContainsAny(src, "*?[") {
					missing = append(missing, src)
				}
			}
			if !rep.check("replay.copy-source", len(matched) > 0 && len(missing) == 0,
				"%s: %s has its sources in the build context (missing or ignored: %v)", df, c.String(), missing) {
				return
			}
			dst := c.DestPath
			if !path.IsAbs(dst) {
				dst = path.Join(workdir, dst)
			}
			dstAbs := filepath.Join(ctxDir, filepath.FromSlash(dst))
			intoDir := strings.HasSuffix(c.DestPath, "/") || len(matched) > 1
			for _, m := range matched {
				if err := copyInto(repo, ign, m, dstAbs, intoDir); err != nil {
					rep.check("replay.copy-source", false, "%s: %s: %v", df, c.String(), err)
					return
				}
			}
		case *instructions.RunCommand:
			line := runLine(c)
			cmdline := strings.ReplaceAll(line, "/out/", out+"/")
			cwd := filepath.Join(ctxDir, filepath.FromSlash(workdir))
			if err := os.MkdirAll(out, 0o755); err != nil {
				rep.check("replay.run", false, "%v", err)
				return
			}
			if err := os.MkdirAll(cwd, 0o755); err != nil {
				rep.check("replay.run", false, "%v", err)
				return
			}
			cmd := exec.CommandContext(ctx, "bash", "-c", cmdline)
			cmd.Dir = cwd
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			outb, err := cmd.CombinedOutput()
			if !rep.check("replay.run", err == nil, "%s: RUN %s (%v)\n%s", df, line, err, strings.TrimSpace(string(outb))) {
				return
			}
		}
	}
	app := filepath.Join(out, "app")
	if rep.check("replay.output", isRegular(app), "%s: the builder produced /out/app", df) {
		static, err := isStatic(app)
		rep.check("replay.static", err == nil && static, "%s: /out/app is a static binary, runs on distroless/static (%v)", df, err)
	}
	from := build.Name
	if from == "" {
		from = "0"
	}
	for _, c := range final.Commands {
		cp, ok := c.(*instructions.CopyCommand)
		if !ok || !strings.EqualFold(cp.From, from) {
			continue
		}
		for _, src := range cp.SourcePaths {
			rel := strings.TrimPrefix(path.Clean(src), "/out")
			_, err := os.Stat(filepath.Join(out, filepath.FromSlash(rel)))
			rep.check("replay.final-copy", strings.HasPrefix(path.Clean(src), "/out") && err == nil,
				"%s: final stage COPY source %s exists in the builder", df, src)
		}
	}
}

// copyInto copies the context path rel (a file, or a directory's contents)
// to dst the way COPY does, skipping what .dockerignore excludes.
func copyInto(repo Repo, ign ignoreMatcher, rel, dst string, intoDir bool) error {
	if !repo.isDir(rel) {
		if intoDir {
			dst = filepath.Join(dst, path.Base(rel))
		}
		return copyFile(repo, rel, dst)
	}
	base := filepath.Join(repo.Root, filepath.FromSlash(rel))
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(repo.Root, p)
		if err != nil {
			return err
		}
		r = filepath.ToSlash(r)
		if p != base && ign.ignored(r) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || repo.Removed[r] {
			return nil
		}
		sub, _ := filepath.Rel(base, p)
		return copyFile(repo, r, filepath.Join(dst, sub))
	})
}

func copyFile(repo Repo, rel, dst string) error {
	data, err := repo.read(rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

func isRegular(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// isStatic reports whether the ELF file p has neither an interpreter nor a
// dynamic section (readelf -l shows no INTERP and no DYNAMIC).
func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			return false, nil
		}
	}
	return true, nil
}
