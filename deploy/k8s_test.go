package deploy

import (
	"context"
	"testing"
)

// TestK8sFiles renders every overlay and runs every Kubernetes check.
func TestK8sFiles(t *testing.T) {
	rep := CheckK8s(context.Background(), Repo{Root: root(t)})
	for _, r := range rep.Results {
		t.Log(r)
	}
	for _, r := range rep.Failed() {
		t.Error(r)
	}
}
