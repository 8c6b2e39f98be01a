// Package analytics owns the gateway's usage schema: the partitioned
// usage_logs and violations tables and the hourly and daily rollups. Every
// statement that reads or writes them lives here:
//
//   - writing: Store.Insert, the ingester's idempotent batch insert (new log
//     rows, then the rollups and violations of exactly those rows, in one
//     transaction);
//   - upkeep: EnsurePartitions and Retention (monthly partitions, per-tenant
//     retention by partition drops and row deletes);
//   - reading: Store.Logs, Store.Stats, Store.Violations and Store.Violation
//     behind the /analytics routes, Store.Summary behind the gRPC usage
//     summary, and Store.CountSince, the monthly quota's seed.
//
// Callers pass validated filters and get plain Go values back; no other
// package builds SQL on these tables. The event types travel in package
// usage, which the proxy publishes and the ingester decodes.
package analytics

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Store reads and writes the usage tables of one database.
type Store struct {
	pool *pgxpool.Pool
	// countBudget is LogCountBudget (tests shorten it).
	countBudget time.Duration
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool, countBudget: LogCountBudget} }

// ErrNotFound is returned by lookups of one row that find none.
var ErrNotFound = errors.New("analytics: not found")
