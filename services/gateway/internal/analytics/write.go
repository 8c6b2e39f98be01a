package analytics

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"trueportai/services/gateway/internal/usage"
)

// stagingDDL creates the session's staging tables once (a no-op afterwards):
// the ingester COPYs a batch (and its rollup groups, when foldBatch folded
// it) into them, and ingestSQL moves it on. They are temporary (no WAL,
// session-local buffers) and emptied at every commit.
// Ids are text here and cast on the way out, so a value that is not a uuid
// fails with Postgres's data exception (ErrRefused), as before.
var stagingDDL = `CREATE TEMP TABLE IF NOT EXISTS usage_staging (id uuid, request_id text, created_at timestamptz, tenant_id text, env text,
	key_id text, key_name text, provider text, model text, path text, status_code int, stream bool, latency_ms float8, ttfb_ms float8,
	prompt_tokens int8, completion_tokens int8, total_tokens int8, cached_tokens int8, cost_usd_e10 int8, outcome text, error text,
	violation_ids text[], request_body text, response_body text) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS violation_staging (id text, request_id text, created_at timestamptz, tenant_id text, env text, key_id text,
	policy_id text, policy_name text, type text, action text, severity text, shadow bool, direction text, matches text, provider text,
	model text) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_staging (dim int2, tenant_id text, env text, bucket timestamptz, provider text, model text,
	key_id text, status_code int, ` + strings.Join(measureCols, " int8, ") + ` int8) ON COMMIT DELETE ROWS`

var stagingCols = []string{"id", "request_id", "created_at", "tenant_id", "env", "key_id", "key_name", "provider", "model", "path", "status_code",
	"stream", "latency_ms", "ttfb_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "cost_usd_e10", "outcome", "error",
	"violation_ids", "request_body", "response_body"}

var violationStagingCols = []string{"id", "request_id", "created_at", "tenant_id", "env", "key_id", "policy_id", "policy_name", "type", "action",
	"severity", "shadow", "direction", "matches", "provider", "model"}

// ingestSQL moves the staged batch (usage_staging) into usage_logs and, in
// the same statement, adds the rows it inserted (RETURNING) to every rollup
// table and stores their violations. It answers how many rows were new.
//
// It is the slower way in. The usual batch, every event new and folded in
// Go by foldBatch, is COPYed straight into usage_logs and its groups added
// by foldedRollupsSQL (docs/benchmarks.md, "Rollups folded in Go"). Without
// onConflict, ingestSQL takes a batch foldBatch or encodeLogRows declined. With
// onConflict, rows whose (tenant_id, env, created_at, request_id) exist are
// skipped (ON CONFLICT DO NOTHING) and only the rows inserted are added, so
// redeliveries never double count. Without ON CONFLICT (and in the COPY) a
// stored row fails the statement with a unique violation on usage_logs,
// and Insert runs the batch again with onConflict. The key is the time
// index's (migration 00016): created_at is in it because usage_logs is
// partitioned on it (migration 00005), and a redelivered event carries the
// tenant, environment and created_at the gateway gave it, so the four
// identify it as (created_at, request_id) did.
func ingestSQL(onConflict bool) string {
	// Without ON CONFLICT a statement that succeeds inserted every staged
	// event, so all their violations are new: no join with the inserted
	// rows (a hash of the whole batch).
	conflict, violationsOf := "", "violation_staging s"
	if onConflict {
		conflict = "ON CONFLICT (tenant_id, env, created_at, request_id) DO NOTHING"
		violationsOf = "violation_staging s JOIN (SELECT DISTINCT request_id, created_at FROM ins) i USING (request_id, created_at)"
	}
	return ingestStatement(conflict+" RETURNING request_id, "+logColsForRollups+", "+rollupDerived, fromLogs("ins"), violationsOf,
		"SELECT count(*) FROM ins")
}

// foldedRollupsSQL adds the groups foldBatch folded (rollup_staging) to
// the rollup tables and stores the staged violations, for a batch COPYed
// straight into usage_logs (every row new: the COPY failed otherwise).
var foldedRollupsSQL = "WITH " + rollupCTEs(fromStaging, "add") + violationsCTE("violation_staging s") + "\nSELECT 0"

func ingestStatement(insertTail string, hourly func(dim int, d dimension, gb string) string, violationsOf, answer string) string {
	return `WITH ins AS (
	INSERT INTO usage_logs (id, request_id, created_at, tenant_id, env, key_id, key_name, provider, model, path, status_code, stream,
		latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd_e10, outcome, error, violation_ids,
		request_body, response_body)
	SELECT id, request_id, created_at, tenant_id::uuid, env, NULLIF(key_id, '')::uuid, key_name, provider, model, path, status_code, stream,
		latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd_e10, outcome, error, violation_ids,
		request_body, response_body
	FROM usage_staging
	` + insertTail + `
),
` + rollupCTEs(hourly, "add") + violationsCTE(violationsOf) + `
` + answer
}

// violationsCTE is the WITH item that stores the staged violations of the
// relation from (violation_staging s, or a join of it).
func violationsCTE(from string) string {
	return `v AS (
	INSERT INTO violations (id, request_id, created_at, tenant_id, env, key_id, policy_id, policy_name, type, action, severity, shadow,
		direction, matches, provider, model)
	SELECT s.id::uuid, s.request_id, s.created_at, s.tenant_id::uuid, s.env, NULLIF(s.key_id, '')::uuid, NULLIF(s.policy_id, '')::uuid,
		s.policy_name, s.type, s.action, s.severity, s.shadow, s.direction, s.matches::jsonb, s.provider, s.model
	FROM ` + from + `
	ON CONFLICT (id, created_at) DO NOTHING
)`
}

// copyLogsSQL COPYs logCopy's rows into usage_logs.
var copyLogsSQL = "COPY usage_logs (" + strings.Join(stagingCols, ", ") + ") FROM STDIN (FORMAT binary)"

// encodeLogRows encodes the batch for a COPY into usage_logs (logCopy); nil
// when a tenant or key id is not in the 8-4-4-4-12 form (the batch then
// goes through the staging table, whose cast decides).
func encodeLogRows(evs []*usage.Event, ids []pgtype.UUID, vids [][]string) []byte {
	c := newLogCopy(len(evs))
	for i, e := range evs {
		tenant, ok := parseUUID(e.TenantID)
		if !ok {
			return nil
		}
		var key *[16]byte
		if e.KeyID != "" {
			k, ok := parseUUID(e.KeyID)
			if !ok {
				return nil
			}
			key = (*[16]byte)(&k)
		}
		c.row(e, ids[i].Bytes, tenant, key, vids[i])
	}
	return c.bytes()
}

// stagingRows are the batch's values for usage_staging (stagingCols), ids
// as text.
func stagingRows(evs []*usage.Event, ids []pgtype.UUID, vids [][]string) [][]any {
	rows := make([][]any, len(evs))
	for i, e := range evs {
		var cost *int64
		if e.CostUSD != nil {
			c := int64(*e.CostUSD)
			cost = &c
		}
		rows[i] = []any{ids[i], e.RequestID, e.CreatedAt, e.TenantID, e.Env, e.KeyID, e.KeyName, e.Provider, e.Model, e.Path, int32(e.StatusCode),
			e.Stream, e.LatencyMS, e.TTFBMS, e.PromptTokens, e.CompletionTokens, e.TotalTokens, e.CachedTokens, cost, e.Outcome, e.Error,
			vids[i], e.RequestBody, e.ResponseBody}
	}
	return rows
}

// parseUUID parses the 8-4-4-4-12 hex form, in either case (uuid.Parse
// also takes braces, a urn or bare hex: those are left to Postgres's cast).
func parseUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.UUID{}, false
	}
	u, err := uuid.Parse(s)
	return u, err == nil
}

// The ingest statement without and with ON CONFLICT. A batch is new
// events but after a crash between commit and ack, or a spool replay:
// without ON CONFLICT each row's unique key is checked in the same index
// descent that inserts it, where ON CONFLICT first searches the index for
// a conflict and then inserts speculatively (a second descent and a
// speculative-insertion lock per row; docs/benchmarks.md, "Ingestion CPU
// in Postgres").
var ingestNewSQL, ingestConflictSQL = ingestSQL(false), ingestSQL(true)

// logKey identifies a stored log row as usage_logs' unique key does
// (migration 00016): tenant, environment, request id and created_at to the
// microsecond (what Postgres keeps of it).
type logKey struct {
	tenantID, env, requestID string
	micros                   int64
}

// Insert writes a batch of events in one transaction. It first assumes
// every event is new: it COPYs the rows into usage_logs and the rollup
// groups foldBatch made of them into a staging table, which one statement
// (foldedRollupsSQL) adds to the rollups, with the violations. When one is
// stored already (a unique violation on usage_logs), the transaction is
// rolled back and the batch written again through the staging table, with
// ON CONFLICT DO NOTHING and the rollups aggregated from the rows inserted
// (ingestSQL). It returns how many events were new; the rest were already
// stored (redeliveries, spool replays) and change nothing. Insert is
// Prepare then InsertBatch.
func (s *Store) Insert(ctx context.Context, evs []usage.Event) (fresh int, err error) {
	return s.InsertBatch(ctx, s.Prepare(evs))
}

// Batch is a batch of events made ready to store: deduplicated, given
// their ids, folded into rollup groups and encoded for the COPY. Preparing
// is CPU only (no I/O), so the ingester prepares the next batch while the
// database stores the one before it; a Batch is only read by InsertBatch,
// which may run it again (a retry after a database error).
type Batch struct {
	uniq  []*usage.Event // points into the events given to Prepare
	ids   []pgtype.UUID
	vids  [][]string
	vrows [][]any // violation_staging's rows
	// logRows is the batch's binary COPY into usage_logs and rollupRows its
	// folded groups; logRows is nil when the batch goes through the
	// staging table (foldBatch declined it, or an id did not parse here).
	logRows    []byte
	rollupRows [][]any
}

// Prepare readies evs for InsertBatch; evs must stay unchanged until then.
// It uses no connection.
func (s *Store) Prepare(evs []usage.Event) *Batch {
	// A batch may hold one event twice (a message redelivered into the
	// same fetch): the first one stands for both.
	seen := make(map[logKey]struct{}, len(evs))
	uniq := make([]*usage.Event, 0, len(evs))
	for i := range evs {
		k := logKey{evs[i].TenantID, evs[i].Env, evs[i].RequestID, evs[i].CreatedAt.UnixMicro()}
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			uniq = append(uniq, &evs[i])
		}
	}
	b := &Batch{uniq: uniq, ids: timeOrderedIDs(uniq), vids: make([][]string, len(uniq))}
	for i, e := range uniq {
		b.vids[i] = e.ViolationIDs
		if len(b.vids[i]) == 0 && len(e.Violations) > 0 {
			b.vids[i] = make([]string, len(e.Violations))
			for j, v := range e.Violations {
				b.vids[i][j] = v.ID
			}
		}
		if b.vids[i] == nil {
			b.vids[i] = []string{}
		}
		for _, v := range e.Violations {
			m, _ := json.Marshal(v.Matches)
			b.vrows = append(b.vrows, []any{v.ID, e.RequestID, e.CreatedAt, e.TenantID, e.Env, e.KeyID, v.PolicyID, v.PolicyName, v.Type, v.Action,
				v.Severity, v.Shadow, v.Direction, string(m), e.Provider, e.Model})
		}
	}
	// Every event is new but after a crash or a replay. The usual batch is
	// folded in Go (foldBatch) and its rows COPYed straight into usage_logs
	// (logCopy: its ids parsed here). A batch foldBatch declines, or whose
	// ids do not parse here, goes through the staging table and Postgres's
	// casts, which refuse what they refuse (ErrRefused) as they always did.
	if groups, folded := foldBatch(uniq); folded {
		if b.logRows = encodeLogRows(uniq, b.ids, b.vids); b.logRows != nil {
			b.rollupRows = rollupStagingRows(groups)
		}
	}
	return b
}

// InsertBatch stores a prepared batch (Insert's contract). When the batch
// was folded, its rows are COPYed into usage_logs; a unique violation there
// is a redelivery, and the batch is written again through the staging
// table with ON CONFLICT.
func (s *Store) InsertBatch(ctx context.Context, b *Batch) (fresh int, err error) {
	copyViolations := func(tx pgx.Tx) error {
		if len(b.vrows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"violation_staging"}, violationStagingCols, pgx.CopyFromRows(b.vrows)); err != nil {
				return fmt.Errorf("copy violations: %w", err)
			}
		}
		return nil
	}
	direct := func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, stagingDDL); err != nil {
				return fmt.Errorf("staging tables: %w", err)
			}
			if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(b.logRows), copyLogsSQL); err != nil {
				return fmt.Errorf("copy usage: %w", err)
			}
			if err := copyViolations(tx); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"rollup_staging"}, rollupStagingCols, pgx.CopyFromRows(b.rollupRows)); err != nil {
				return fmt.Errorf("copy rollups: %w", err)
			}
			if _, err := tx.Exec(ctx, foldedRollupsSQL); err != nil {
				return fmt.Errorf("insert rollups: %w", err)
			}
			fresh = len(b.uniq) // the COPY stored every row or failed
			return nil
		})
	}
	staged := func(sql string) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			fresh = 0
			if _, err := tx.Exec(ctx, stagingDDL); err != nil {
				return fmt.Errorf("staging tables: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"usage_staging"}, stagingCols, pgx.CopyFromRows(stagingRows(b.uniq, b.ids, b.vids))); err != nil {
				return fmt.Errorf("copy usage: %w", err)
			}
			if err := copyViolations(tx); err != nil {
				return err
			}
			var n int64
			if err := tx.QueryRow(ctx, sql).Scan(&n); err != nil {
				return fmt.Errorf("insert usage: %w", err)
			}
			fresh = int(n)
			return nil
		})
	}
	if b.logRows != nil {
		err = direct()
	} else {
		err = staged(ingestNewSQL)
	}
	if storedAlready(err) { // a redelivery: again, skipping the stored events
		err = staged(ingestConflictSQL)
	}
	return fresh, classify(err)
}

// storedAlready tells whether err is the unique violation of usage_logs'
// (tenant_id, env, created_at, request_id) key: an event of the batch is
// stored already.
func storedAlready(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && strings.HasPrefix(pgErr.TableName, "usage_logs")
}

// ErrRefused marks an Insert error caused by the events themselves:
// Postgres refused their data (SQLSTATE class 22, data exception: a value
// that is not a uuid, a NUL byte, a date out of range; 23, integrity
// constraint; 54, program limit: an index entry too large). Inserting the
// same events again fails again, so the ingester isolates the culprits
// (bisecting the batch) and dead-letters them. Any other error (connection
// lost, server shutting down, lock timeout, a schema problem) is not the
// events' fault and is worth retrying as it is.
var ErrRefused = errors.New("events refused by the database")

type refusedError struct{ err error }

func (e refusedError) Error() string   { return e.err.Error() }
func (e refusedError) Unwrap() []error { return []error{e.err, ErrRefused} }

// classify marks the errors of Insert that the events caused (ErrRefused).
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "54":
			return refusedError{err}
		}
	}
	return err
}

// timeOrderedIDs returns a UUIDv7 (RFC 9562) per event: the Unix
// milliseconds of its created_at, then 74 random bits. Rows then enter the
// indexes that hold created_at near their end, in time order, instead
// of on a random leaf page of an index far larger than shared_buffers (and
// a full-page image in the WAL for most of those pages after a checkpoint).
func timeOrderedIDs(evs []*usage.Event) []pgtype.UUID {
	ids := make([]pgtype.UUID, len(evs))
	rnd := make([]byte, 10*len(evs))
	_, _ = rand.Read(rnd) // never fails (crypto/rand panics rather)
	var ms [8]byte
	for i := range evs {
		u := &ids[i].Bytes
		binary.BigEndian.PutUint64(ms[:], uint64(evs[i].CreatedAt.UnixMilli()))
		copy(u[:6], ms[2:])
		copy(u[6:], rnd[10*i:10*i+10])
		u[6] = u[6]&0x0f | 0x70 // version 7
		u[8] = u[8]&0x3f | 0x80 // variant RFC 9562
		ids[i].Valid = true
	}
	return ids
}
