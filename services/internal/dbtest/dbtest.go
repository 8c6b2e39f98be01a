// Package dbtest gives each test its own freshly created Postgres database.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"trueportai/services/internal/pgdb"
)

// BaseURL is the server tests run against: TEST_DATABASE_URL or the local
// trust-auth default.
func BaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewURL returns the URL of a database that does not exist yet, unique to
// this test, and drops it when the test ends. The services create it at start.
func NewURL(t testing.TB, prefix string) string {
	t.Helper()
	u, err := url.Parse(BaseURL())
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	u.Path = "/" + prefix + "_" + hex.EncodeToString(b[:])
	dsn := u.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pgdb.DropDatabase(ctx, dsn); err != nil {
			t.Logf("drop test database: %v", err)
		}
	})
	return dsn
}
