package secretbox

import (
	"bytes"
	"strings"
	"testing"
)

func TestSealOpenRotation(t *testing.T) {
	oldKey := bytes.Repeat([]byte{1}, 32)
	newKey := bytes.Repeat([]byte{2}, 32)
	oldBox, _ := New(oldKey)
	sealed, err := oldBox.Seal("sk-live-secret", "t1/providers.openai.api_key")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "sk-live-secret") {
		t.Fatal("plaintext visible in ciphertext")
	}
	rotated, _ := New(newKey, oldKey)
	got, err := rotated.Open(sealed, "t1/providers.openai.api_key")
	if err != nil || got != "sk-live-secret" {
		t.Fatalf("open after rotation: %q %v", got, err)
	}
	if _, err := rotated.Open(sealed, "t2/providers.openai.api_key"); err == nil {
		t.Fatal("ciphertext opened under another tenant's aad")
	}
	resealed, _ := rotated.Seal("x", "a")
	if !strings.Contains(resealed, ":"+KeyID(newKey)+":") {
		t.Fatal("new values not sealed with the primary key")
	}
	if _, err := New(bytes.Repeat([]byte{1}, 16)); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"sk-abcdefghijklmnop": "sk-…mnop", "short": "…", "AIzaSyD1234567890": "…7890",
		// Short secrets never show most of themselves.
		"abcd-efgh": "…", "abcdefg-hijk": "…hijk", "sk-abcdefgh": "…", "abcdefgh1234": "…1234", "abcdefgh123": "…", "sk-abcdef12345": "…2345",
		"abcdefghijklmnop": "…mnop", "sk-ab€": "…", "": "…",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
