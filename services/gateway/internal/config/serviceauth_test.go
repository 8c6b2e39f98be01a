package config

import (
	"strings"
	"testing"
)

// TestLoadReadsServiceIdentity: Load reads the service identity through
// svcauth.LoadConfig (its rules are tested there), dev mode from APP_ENV.
func TestLoadReadsServiceIdentity(t *testing.T) {
	t.Parallel()
	c, err := Load(func(k string) string { return map[string]string{"APP_ENV": "dev", "SERVICE_KEY_FILE": "k.pem"}[k] })
	if err != nil || c.ServiceIdentity.KeyFile != "k.pem" || !c.ServiceIdentity.Dev {
		t.Errorf("dev: %+v %v", c.ServiceIdentity, err)
	}
	if _, err := Load(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "SERVICE_KEY_FILE") {
		t.Errorf("prod (the default) without SERVICE_KEY_FILE: %v", err)
	}
}
