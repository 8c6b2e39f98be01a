package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// miniRepo writes a one-module workspace: go.work, app/go.mod, app/main.go,
// .dockerignore ignoring bin/.
func miniRepo(t *testing.T, dockerignore string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.work":       "go 1.26.8\n\nuse ./app\n",
		"app/go.mod":    "module example.com/app\n\ngo 1.26.8\n",
		"app/main.go":   "package main\n\nfunc main() {}\n",
		"bin/junk":      "ignored\n",
		".dockerignore": dockerignore,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReplayCatchesBrokenBuilders replays small Dockerfiles against a
// one-module repository: a good one passes, each broken one fails the
// named replay check.
func TestReplayCatchesBrokenBuilders(t *testing.T) {
	const good = `FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.work ./
COPY app/ app/
RUN --mount=type=cache,target=/root/.cache/go-build go build -trimpath -o /out/app ./app
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
`
	cases := []struct {
		name, want, old, new, dockerignore string
	}{
		{name: "good"},
		{name: "copy with flags", want: "replay.copy-flags", old: "COPY go.work ./", new: "COPY --chmod=644 go.work ./"},
		{name: "copy of a missing file", want: "replay.copy-source", old: "COPY go.work ./", new: "COPY go.work go.work.sum ./"},
		{name: "copy of an ignored file", want: "replay.copy-source", old: "COPY app/ app/", new: "COPY bin/junk app/"},
		{name: "copy of an ignored directory", want: "replay.copy-source", dockerignore: "app\n"},
		{name: "failing run", want: "replay.run", old: "./app\n", new: "./nothing\n"},
		{name: "no /out/app", want: "replay.output", old: "-o /out/app", new: "-o /out/other"},
		{name: "dynamic binary", want: "replay.static", old: "RUN --mount=type=cache,target=/root/.cache/go-build go build -trimpath -o /out/app ./app", new: "RUN cp /bin/true /out/app"},
		{name: "final copy of a missing file", want: "replay.final-copy", old: "COPY --from=build /out/app /app", new: "COPY --from=build /out/app /app\nCOPY --from=build /out/etc/ /etc/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.dockerignore == "" {
				c.dockerignore = "bin/\n"
			}
			dir := miniRepo(t, c.dockerignore)
			df := good
			if c.old != "" {
				if !strings.Contains(df, c.old) {
					t.Fatalf("Dockerfile lacks %q", c.old)
				}
				df = strings.Replace(df, c.old, c.new, 1)
			}
			stages, err := parseDockerfile([]byte(df))
			if err != nil {
				t.Fatal(err)
			}
			rep := &Report{}
			ign := checkDockerignore(rep, Repo{Root: dir})
			replay(context.Background(), rep, Repo{Root: dir}, ign, goService{name: "app", dockerfile: "Dockerfile"},
				stages[0], stages[len(stages)-1], t.TempDir())
			failed := rep.Failed()
			if c.want == "" {
				for _, f := range failed {
					if !strings.HasPrefix(f.ID, "dockerignore.") { // the mini repo keeps no services/
						t.Error(f)
					}
				}
				return
			}
			for _, f := range failed {
				if f.ID == c.want {
					t.Log(f)
					return
				}
			}
			t.Errorf("check %s did not fail; failures: %v", c.want, failed)
		})
	}
}
