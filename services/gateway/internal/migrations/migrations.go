// Package migrations embeds the gateway database schema migrations (goose).
package migrations

import "embed"

// FS holds the migration files at its root.
//
//go:embed *.sql
var FS embed.FS
