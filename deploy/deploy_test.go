package deploy

import (
	"context"
	"path/filepath"
	"testing"
)

func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDeployFiles runs every check on the repository's files, with the
// builder stages replayed (skipped with -short).
func TestDeployFiles(t *testing.T) {
	opt := Options{Replay: !testing.Short(), ScratchDir: t.TempDir()}
	rep := Check(context.Background(), Repo{Root: root(t)}, opt)
	for _, r := range rep.Results {
		t.Log(r)
	}
	for _, r := range rep.Failed() {
		t.Error(r)
	}
}
