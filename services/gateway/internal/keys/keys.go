// Package keys manages tenant API keys: generation, hashed storage, and the
// in-memory cache the proxy authenticates against without touching the database.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"slices"
	"time"
)

const (
	// Prefix starts every key.
	Prefix    = "sk-"
	bodyLen   = 40
	prefixLen = 8
	alphabet  = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// Key is an API key as stored (never the secret itself).
type Key struct {
	ID            string
	TenantID      string
	Env           string
	Name          string
	Prefix        string
	Hash          [32]byte
	Enabled       bool
	RPMLimit      int
	AllowedModels []string
	ExpiresAt     *time.Time
	LastUsedAt    *time.Time
	CreatedBy     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Usable reports whether the key may authenticate a request at now.
func (k *Key) Usable(now time.Time) bool {
	return k.Enabled && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// AllowsModel reports whether the key may call model (empty list: any).
func (k *Key) AllowsModel(model string) bool {
	return len(k.AllowedModels) == 0 || slices.Contains(k.AllowedModels, model)
}

// Generate returns a new secret key ("sk-" + 40 base62 chars), its display
// prefix (first 8 chars after "sk-") and its SHA-256.
func Generate() (secret, prefix string, hash [32]byte, err error) {
	b := make([]byte, bodyLen)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", "", hash, err
		}
		b[i] = alphabet[n.Int64()]
	}
	secret = Prefix + string(b)
	return secret, string(b[:prefixLen]), Hash(secret), nil
}

// Hash is the stored form of a key. Keys of up to 128 bytes are hashed
// from a copy on the stack: the proxy hashes the caller's key on every
// request, and a longer-than-32-byte conversion would allocate.
func Hash(secret string) [32]byte {
	var buf [128]byte
	if len(secret) <= len(buf) {
		n := copy(buf[:], secret)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(secret))
}
