// Package secretbox encrypts stored secrets (tenant provider credentials) with
// AES-256-GCM. Ciphertexts carry the id of the key that sealed them so keys
// can be rotated: the newest key seals, every known key opens.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

const prefix = "v1"

// Box seals with its primary key and opens with any of its keys.
type Box struct {
	primary string
	aeads   map[string]cipher.AEAD
}

// KeyID derives a stable short id from key material.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// New builds a box; keys[0] is the primary (sealing) key, the rest are older
// keys kept for opening. Each must be 32 bytes.
func New(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("secretbox: no key")
	}
	b := &Box{aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("secretbox: key %d is %d bytes, want 32", i, len(k))
		}
		blk, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(blk)
		if err != nil {
			return nil, err
		}
		id := KeyID(k)
		if i == 0 {
			b.primary = id
		}
		b.aeads[id] = aead
	}
	return b, nil
}

// ParseKey decodes a base64 (std or url) 32-byte key.
func ParseKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(strings.TrimSpace(s)); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("key decodes to %d bytes, want 32", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("key is not base64")
}

// Seal encrypts plaintext bound to aad (e.g. tenant id + config key), so a
// ciphertext copied to another tenant's row does not open.
func (b *Box) Seal(plaintext, aad string) (string, error) {
	aead := b.aeads[b.primary]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return prefix + ":" + b.primary + ":" + base64.RawStdEncoding.EncodeToString(ct), nil
}

// Open decrypts a value produced by Seal with the same aad.
func (b *Box) Open(sealed, aad string) (string, error) {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != prefix {
		return "", errors.New("secretbox: malformed ciphertext")
	}
	aead, ok := b.aeads[parts[1]]
	if !ok {
		return "", fmt.Errorf("secretbox: unknown key id %s", parts[1])
	}
	raw, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < aead.NonceSize() {
		return "", errors.New("secretbox: malformed ciphertext")
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(aad))
	if err != nil {
		return "", errors.New("secretbox: ciphertext does not authenticate")
	}
	return string(pt), nil
}

// Mask shows only the shape of a secret: "sk-…abcd". At least half of the
// secret, and never fewer than 8 characters, stay hidden: a short secret
// loses its prefix, a very short one shows nothing ("…").
func Mask(s string) string {
	const tail = 4
	keepsHidden := func(shown int) bool {
		hidden := len(s) - shown
		return hidden >= 8 && 2*hidden >= len(s)
	}
	if len(s) < tail || !utf8.ValidString(s[len(s)-tail:]) {
		return "…"
	}
	head := ""
	if i := strings.IndexAny(s, "-_"); i > 0 && i <= 7 {
		head = s[:i+1]
	}
	switch {
	case keepsHidden(len(head) + tail):
		return head + "…" + s[len(s)-tail:]
	case keepsHidden(tail):
		return "…" + s[len(s)-tail:]
	}
	return "…"
}
