package config

import (
	"strings"
	"testing"
)

// TestServiceIdentityConfig: in prod the service-token key and the three
// mutual TLS files are required; in dev all are optional, but the TLS files
// go together; the former pre-shared token is no longer asked for.
func TestServiceIdentityConfig(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string) error {
		_, err := Load(func(k string) string { return env[k] })
		return err
	}
	err := load(map[string]string{"APP_ENV": "prod"})
	for _, name := range []string{"SERVICE_KEY_FILE", "GRPC_TLS_CA_FILE"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("prod without %s: %v", name, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "GRPC_TOKEN") {
		t.Errorf("the pre-shared token is still required: %v", err)
	}
	if err := load(map[string]string{"APP_ENV": "dev"}); err != nil {
		t.Errorf("dev without key or TLS files: %v", err)
	}
	if err := load(map[string]string{"APP_ENV": "dev", "GRPC_TLS_CA_FILE": "ca.pem"}); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("one TLS file of three: %v", err)
	}
	c, err := Load(func(k string) string {
		return map[string]string{"APP_ENV": "dev", "SERVICE_KEY_FILE": "k.pem", "SERVICE_PREVIOUS_KEY_FILES": "a.pem, b.pem",
			"SERVICE_INSTANCE_ID": "pod-1", "GRPC_TLS_CA_FILE": "ca", "GRPC_TLS_CERT_FILE": "c", "GRPC_TLS_KEY_FILE": "k"}[k]
	})
	if err != nil || c.ServiceKeyFile != "k.pem" || len(c.ServicePreviousKeyFiles) != 2 || c.ServicePreviousKeyFiles[1] != "b.pem" ||
		c.InstanceID != "pod-1" || c.GRPCTLS.CA != "ca" || c.GRPCTLS.Cert != "c" || c.GRPCTLS.Key != "k" {
		t.Errorf("set: %+v %v", c, err)
	}
}
