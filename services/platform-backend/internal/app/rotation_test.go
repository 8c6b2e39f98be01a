package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/secretbox"
	"trueportai/services/platform-backend/internal/token"
)

// TestKeyRotationWiring: values sealed and tokens signed with retired keys
// stay readable and valid when the retired keys are configured as previous.
func TestKeyRotationWiring(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)
	oldBox, _ := secretbox.New(oldKey)
	sealed, _ := oldBox.Seal("sk-provider", "tenant/providers.openai.api_key")
	cfg := config.Config{
		SecretsEncryptionKey:   base64.StdEncoding.EncodeToString(newKey),
		PreviousEncryptionKeys: []string{base64.StdEncoding.EncodeToString(oldKey)},
	}
	box, err := loadBox(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := box.Open(sealed, "tenant/providers.openai.api_key"); err != nil || got != "sk-provider" {
		t.Fatalf("open with previous key: %q %v", got, err)
	}

	_, oldPriv, _ := ed25519.GenerateKey(rand.Reader)
	pemBytes, _ := jwk.EncodePEM(oldPriv)
	file := filepath.Join(t.TempDir(), "old.pem")
	if err := os.WriteFile(file, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	oldIssuer, _ := token.NewIssuer(oldPriv, nil, "iss", "aud", time.Now)
	tok, _, _ := oldIssuer.Issue(token.Claims{Subject: "u", Type: token.TypeGlobal}, time.Minute)
	previous, err := loadPreviousJWTKeys([]string{file})
	if err != nil {
		t.Fatal(err)
	}
	_, newPriv, _ := ed25519.GenerateKey(rand.Reader)
	issuer, _ := token.NewIssuer(newPriv, previous, "iss", "aud", time.Now)
	if _, err := issuer.Parse(tok); err != nil {
		t.Fatalf("token signed by the retired key: %v", err)
	}
	without, _ := token.NewIssuer(newPriv, nil, "iss", "aud", time.Now)
	if _, err := without.Parse(tok); err == nil {
		t.Fatal("retired key accepted without being configured")
	}
}
