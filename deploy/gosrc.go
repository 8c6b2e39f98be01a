package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// sources caches, per build target, the non-test Go files of the packages
// that target is built from within this repository's modules.
var sources struct {
	sync.Mutex
	byTarget map[string][][]byte
}

// readsVar reports whether the code built into target mentions the variable
// name as a string literal ("NAME"): every variable a binary reads is named
// so in its config code.
func readsVar(ctx context.Context, repo Repo, target, name string) bool {
	files, err := targetSources(ctx, repo.Root, target)
	if err != nil {
		return false
	}
	lit := []byte(`"` + name + `"`)
	for _, f := range files {
		if bytes.Contains(f, lit) {
			return true
		}
	}
	return false
}

func targetSources(ctx context.Context, root, target string) ([][]byte, error) {
	sources.Lock()
	defer sources.Unlock()
	key := root + "\x00" + target
	if f, ok := sources.byTarget[key]; ok {
		return f, nil
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-json=Dir,GoFiles,Module", target)
	cmd.Dir = root
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOWORK=") && !strings.HasPrefix(kv, "GOFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(err.Error() + ": " + stderr.String())
	}
	var files [][]byte
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir     string
			GoFiles []string
			Module  *struct{ Main bool }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		if p.Module == nil || !p.Module.Main { // the standard library and dependencies
			continue
		}
		for _, f := range p.GoFiles {
			b, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			files = append(files, b)
		}
	}
	if sources.byTarget == nil {
		sources.byTarget = map[string][][]byte{}
	}
	sources.byTarget[key] = files
	return files, nil
}
