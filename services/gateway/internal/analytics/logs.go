package analytics

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"trueportai/services/internal/money"
)

// LogFilter selects the usage log rows of one tenant environment. Zero
// fields do not filter.
type LogFilter struct {
	TenantID, Env string
	From, To      time.Time // [From, To)
	KeyID         string
	Provider      string
	Model         string
	StatusCode    int // exact status
	StatusClass   int // 2 for 2xx … 5 for 5xx
	Stream        *bool
}

func (f LogFilter) where() *where {
	w := scoped(f.TenantID, f.Env, f.From, f.To)
	if f.KeyID != "" {
		w.add("key_id = ?::uuid", f.KeyID)
	}
	if f.Provider != "" {
		w.add("provider = ?", f.Provider)
	}
	if f.Model != "" {
		w.add("model = ?", f.Model)
	}
	if f.StatusClass != 0 {
		w.add("status_code >= ?", f.StatusClass*100)
		w.add("status_code < ?", f.StatusClass*100+100)
	}
	if f.StatusCode != 0 {
		w.add("status_code = ?", f.StatusCode)
	}
	if f.Stream != nil {
		w.add("stream = ?", *f.Stream)
	}
	return w
}

// filtersRows tells whether f selects rows within its time range (any
// filter besides tenant, env, from and to): then most index entries the
// page walks do not match.
func (f LogFilter) filtersRows() bool {
	return f.KeyID != "" || f.Provider != "" || f.Model != "" || f.StatusCode != 0 || f.StatusClass != 0 || f.Stream != nil
}

// logCols are the columns of a Log, in scan order, of the row source l.
const logCols = `l.id::text, l.request_id, l.created_at, l.key_id::text, l.key_name, l.env, l.provider, l.model, l.path, l.status_code, l.stream,
	l.latency_ms, l.ttfb_ms, l.prompt_tokens, l.completion_tokens, l.total_tokens, l.cached_tokens,
	COALESCE(l.cost_usd_e10, round(l.cost_usd * 1e10)::bigint), l.outcome, l.error, l.violation_ids, l.request_body, l.response_body`

// Log is one stored usage log row.
type Log struct {
	ID               string
	RequestID        string
	CreatedAt        time.Time // UTC
	KeyID            *string
	KeyName          string
	Env              string
	Provider         string
	Model            string
	Path             string
	StatusCode       int
	Stream           bool
	LatencyMS        float64
	TTFBMS           *float64
	PromptTokens     *int64
	CompletionTokens *int64
	TotalTokens      *int64
	CachedTokens     *int64
	CostUSD          *money.USD
	Outcome          string
	Error            string
	ViolationIDs     []string
	RequestBody      *string
	ResponseBody     *string
}

// LogTotalCap bounds the exact count behind a logs page's total: an exact
// count of millions of rows would cost seconds per page (stats give exact
// volumes).
const LogTotalCap = 10000

// LogCountBudget bounds the time the count behind a page's total may take:
// the count walks one covering index (migrations 00015 and 00016) and checks the other
// filters inside it, so a rare combination (a key's 5xx of one model, a
// rare model over a year) may have to walk millions of index entries to
// find LogTotalCap matches.
// Past the budget the total is Postgres's estimate for the filter, marked
// as such (LogPage.Estimated).
const LogCountBudget = 12 * time.Millisecond

// LogPage is one page of logs, newest first.
type LogPage struct {
	Items     []Log
	Total     int  // matching rows: exact up to LogTotalCap, unless Estimated
	Capped    bool // more than LogTotalCap rows match (Total is the cap)
	Estimated bool // the count ran out of LogCountBudget: Total is the planner's estimate
}

// Logs returns a page of the rows f selects, newest first. The count behind
// its total and the page run at the same time, on two connections of the
// pool: a count that runs out of LogCountBudget then costs the budget, not
// the budget plus the page.
func (s *Store) Logs(ctx context.Context, f LogFilter, limit, offset int) (LogPage, error) {
	w := f.where()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type total struct {
		page LogPage
		err  error
	}
	counted := make(chan total, 1)
	go func() {
		page, err := s.logTotal(ctx, w)
		counted <- total{page, err}
	}()
	items, err := s.logItems(ctx, f, w, limit, offset)
	if err != nil {
		cancel()
		<-counted
		return LogPage{}, err
	}
	t := <-counted
	if t.err != nil {
		return LogPage{}, t.err
	}
	t.page = t.page.settle(len(items), limit, offset)
	t.page.Items = items
	return t.page, nil
}

// settle corrects an estimated total with what the page shows. A page that
// is not full ends the listing: the total is exact, offset plus its rows
// (when it holds rows or starts at 0; capped as the count is). A full page
// means at least offset + limit rows, an empty page past the start at most
// offset: the estimate is kept within those bounds, still marked.
func (p LogPage) settle(rows, limit, offset int) LogPage {
	if !p.Estimated || limit <= 0 {
		return p
	}
	switch {
	case rows < limit && (rows > 0 || offset == 0):
		p.Total, p.Capped, p.Estimated = offset+rows, false, false
		if p.Total > LogTotalCap {
			p.Total, p.Capped = LogTotalCap, true
		}
	case rows >= limit:
		p.Total = max(p.Total, offset+rows)
	default: // an empty page past the start
		p.Total = min(p.Total, offset)
	}
	return p
}

// logItems reads the page of the rows f (whose WHERE is w) selects.
func (s *Store) logItems(ctx context.Context, f LogFilter, w *where, limit, offset int) ([]Log, error) {
	limitOffset, args := w.page(limit, offset)
	q := `SELECT ` + logCols + ` FROM usage_logs l WHERE ` + w.String() + ` ORDER BY l.created_at DESC, l.id DESC ` + limitOffset
	if f.filtersRows() {
		// Two steps: the page's (created_at, id) from one of the covering
		// indexes (migrations 00015 and 00016), every filter checked inside it (an
		// index-only scan: rows that do not match are never read from the
		// heap), then its rows, one index probe each. The probe repeats the
		// filter (its column names are the probed table's), so that a time
		// range prunes its partitions when planned; LIMIT 1 keeps it a
		// nested loop: (created_at, id) is one row.
		q = `SELECT ` + logCols + ` FROM (SELECT created_at, id FROM usage_logs WHERE ` + w.String() + `
			ORDER BY created_at DESC, id DESC ` + limitOffset + `) p
			CROSS JOIN LATERAL (SELECT * FROM usage_logs u WHERE ` + w.String() + ` AND u.created_at = p.created_at AND u.id = p.id LIMIT 1) l
			ORDER BY p.created_at DESC, p.id DESC`
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := []Log{}
	for rows.Next() {
		var l Log
		var cost *int64
		if err := rows.Scan(&l.ID, &l.RequestID, &l.CreatedAt, &l.KeyID, &l.KeyName, &l.Env, &l.Provider, &l.Model, &l.Path, &l.StatusCode, &l.Stream,
			&l.LatencyMS, &l.TTFBMS, &l.PromptTokens, &l.CompletionTokens, &l.TotalTokens, &l.CachedTokens, &cost, &l.Outcome, &l.Error,
			&l.ViolationIDs, &l.RequestBody, &l.ResponseBody); err != nil {
			return nil, err
		}
		if cost != nil {
			c := money.USD(*cost)
			l.CostUSD = &c
		}
		l.CreatedAt = l.CreatedAt.UTC()
		items = append(items, l)
	}
	return items, rows.Err()
}

// logTotal counts the rows w selects, up to LogTotalCap+1, within
// LogCountBudget (statement_timeout in its own transaction); past it, the
// total is the planner's row estimate of the filter. The count walks one of
// the covering indexes, never the heap: with sequential scans allowed the
// planner may prefer reading month partitions from their start (every
// tenant's rows, cold pages) because LIMIT makes a scan look cheap.
//
// The estimate is hedged: when the count has not answered within half its
// budget, the estimate is asked for on another connection, so a count that
// runs out answers at the budget, not at the budget plus the planning of
// the estimate (a few ms over a year of partitions).
func (s *Store) logTotal(ctx context.Context, w *where) (LogPage, error) {
	type estimate struct {
		total int
		err   error
	}
	estimated := make(chan estimate, 1)
	hedge := time.AfterFunc(s.countBudget/2, func() {
		// Not cancelled when the count answers first: a query cancelled
		// mid-flight costs its pool connection (closed, dialled again by
		// a later request); the planning is a few ms.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		n, err := s.logEstimate(ectx, w)
		estimated <- estimate{n, err}
	})
	page, err := s.logCount(ctx, w)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" { // not query_canceled (the budget ran out)
		hedge.Stop()
		if err != nil {
			return LogPage{}, err
		}
		return page, nil
	}
	var e estimate
	if hedge.Stop() { // not started: a count cancelled that early is rare
		e.total, e.err = s.logEstimate(ctx, w)
	} else {
		e = <-estimated
	}
	if e.err != nil {
		return LogPage{}, e.err
	}
	return LogPage{Total: e.total, Estimated: true}, nil
}

// logCount counts the rows w selects, up to LogTotalCap+1, under
// the count budget (a query_canceled error past it).
func (s *Store) logCount(ctx context.Context, w *where) (LogPage, error) {
	var page LogPage
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true), set_config('enable_seqscan', 'off', true)`,
			strconv.FormatInt(max(s.countBudget.Milliseconds(), 1), 10)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM usage_logs WHERE `+w.String()+` LIMIT `+strconv.Itoa(LogTotalCap+1)+`) x`,
			w.args...).Scan(&page.Total)
	})
	if err != nil {
		return LogPage{}, err
	}
	page.Capped = page.Total > LogTotalCap
	page.Total = min(page.Total, LogTotalCap)
	return page, nil
}

// logEstimate is the planner's row estimate of the rows w selects.
func (s *Store) logEstimate(ctx context.Context, w *where) (int, error) {
	var plan []map[string]any
	if err := s.pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM usage_logs WHERE `+w.String(), w.args...).Scan(&plan); err != nil {
		return 0, err
	}
	if len(plan) > 0 {
		if p, ok := plan[0]["Plan"].(map[string]any); ok {
			if rows, ok := p["Plan Rows"].(float64); ok {
				return int(rows), nil
			}
		}
	}
	return 0, nil
}
