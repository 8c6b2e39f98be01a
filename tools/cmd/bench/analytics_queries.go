package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The SQL of internal/analytics/stats.go (rollupSource and its grouped
// query, run with enable_sort off) and logs.go (Logs: the budgeted count without sequential scans,
// and the two-step page), copied; sqlFingerprint says when.
const (
	logCols = `l.id::text, l.request_id, l.created_at, l.key_id::text, l.key_name, l.env, l.provider, l.model, l.path,
		l.status_code, l.stream, l.latency_ms, l.ttfb_ms, l.prompt_tokens, l.completion_tokens, l.total_tokens, l.cached_tokens,
		COALESCE(l.cost_usd_e10, round(l.cost_usd * 1e10)::bigint), l.outcome, l.error, l.violation_ids, l.request_body, l.response_body`
	// logCountBudgetMs is analytics.LogCountBudget.
	logCountBudgetMs = 12
)

// measureCols are analytics.measureCols.
var measureCols = func() []string {
	out := []string{"requests", "errors", "unknown_usage", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd_e10", "latency_sum_us"}
	for i := range 14 {
		out = append(out, "h"+strconv.Itoa(i))
	}
	return out
}()

// statsDims are analytics.groupBys: the rollup dimension and grouping
// column of each group_by, and the dimension's key columns.
var statsDims = map[string]struct{ dim, col, keys string }{
	"model":    {"model", "model", "provider, model"},
	"provider": {"model", "provider", "provider, model"},
	"key":      {"key", "key_id::text", "key_id"},
	"status":   {"status", "status_code::text", "status_code"},
}

// statsSQL is the stats handler's grouped query for group_by and interval
// over rollupSource's source (hour: $1..$4; day and month: $1..$7).
func statsSQL(groupBy, interval string) string {
	d := statsDims[groupBy]
	cols := "bucket, " + d.keys + ", " + strings.Join(measureCols, ", ")
	hourly, daily := "usage_rollups_"+d.dim+"_hourly", "usage_rollups_"+d.dim+"_daily"
	who := "tenant_id = $1::uuid AND env = $2"
	src := `(SELECT ` + cols + ` FROM ` + hourly + ` WHERE ` + who + ` AND bucket >= $3 AND bucket < $4) r`
	if interval != "hour" {
		src = `(SELECT ` + cols + ` FROM ` + daily + ` WHERE ` + who + ` AND bucket >= $3 AND bucket < $4
		UNION ALL
		SELECT ` + cols + ` FROM ` + hourly + ` WHERE ` + who + `
			AND ((bucket >= $5 AND bucket < $8) OR (bucket >= $6 AND bucket < $7))) r`
	}
	var sums strings.Builder
	for _, c := range measureCols {
		sums.WriteString(", sum(r." + c + ")::bigint")
	}
	bucket := "date_trunc('" + interval + "', r.bucket, 'UTC')"
	if interval == "hour" {
		bucket = "r.bucket"
	}
	return fmt.Sprintf(`SELECT %[1]s, %[2]s, GROUPING(%[1]s)%[3]s
		FROM %[4]s GROUP BY GROUPING SETS ((%[1]s), (%[2]s)) ORDER BY 3, 1`, bucket, d.col, sums.String(), src)
}

// statsArgs are rollupSource's arguments for [from, to) (the tenant and env
// first).
func statsArgs(tenant string, from, to time.Time, interval string) string {
	ts := func(t time.Time) string { return "'" + t.UTC().Format(time.RFC3339) + "'" }
	fromHour := from.UTC().Truncate(time.Hour)
	if interval == "hour" {
		return fmt.Sprintf("'%s', 'production', %s, %s", tenant, ts(fromHour), ts(to))
	}
	day := 24 * time.Hour
	firstDay := fromHour.Truncate(day)
	if firstDay.Before(fromHour) {
		firstDay = firstDay.Add(day)
	}
	lastDay := to.UTC().Truncate(day)
	if lastDay.Before(firstDay) {
		lastDay = firstDay
	}
	edge := lastDay
	if edge.Before(fromHour) {
		edge = fromHour
	}
	headEnd := firstDay
	if to.Before(headEnd) {
		headEnd = to
	}
	return fmt.Sprintf("'%s', 'production', %s, %s, %s, %s, %s, %s", tenant, ts(firstDay), ts(lastDay), ts(fromHour), ts(edge), ts(to), ts(headEnd))
}

// statsScenario is one stats request of the matrix.
type statsScenario struct {
	interval, groupBy string
	days              int
}

func (s statsScenario) name() string {
	return fmt.Sprintf("stats_%s_%s_%dd", s.interval, s.groupBy, s.days)
}

// statsMatrix is every request the API accepts, by interval (hour up to 31
// days, as the handler allows), group_by and range up to maxDays (the
// largest plan's retention).
func statsMatrix(maxDays int) []statsScenario {
	var out []statsScenario
	for _, iv := range []string{"hour", "day", "month"} {
		for _, d := range []int{1, 7, 30, 90, 365} {
			if d > maxDays || (iv == "hour" && d > 31) || (iv == "month" && d < 30) {
				continue
			}
			for _, g := range []string{"model", "provider", "key", "status"} {
				out = append(out, statsScenario{iv, g, d})
			}
		}
	}
	return out
}

// timedSQL runs prepares, then execute up to RUNS times in one session,
// stopping once minRuns are done and the budget has passed; ms per run
// (each result fully read, as psql's \timing).
func (a *analytics) timedSQL(ctx context.Context, prepares []string, run func(ctx context.Context, c *pgconn.PgConn) error) ([]float64, error) {
	conn, err := a.session(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	for _, p := range prepares {
		if _, err := sq(ctx, conn, p); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	var ms []float64
	for i := 1; i <= a.cfg.runs; i++ {
		st := time.Now()
		if err := run(ctx, conn.PgConn()); err != nil {
			return nil, err
		}
		ms = append(ms, float64(time.Since(st).Microseconds())/1000)
		if i >= minRuns && time.Since(t0) > a.cfg.budget {
			break
		}
	}
	return ms, nil
}

// pct is the nearest-rank q-quantile of v (q in (0, 1]); with fewer than
// 100 runs p99 is the maximum.
func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// explain writes EXPLAIN (ANALYZE, BUFFERS) of one execution (after a
// warm-up one) to NAME.txt in the plans directory.
func (a *analytics) explain(ctx context.Context, name, prepare, execute string) error {
	conn, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := sq(ctx, conn, prepare); err != nil {
		return err
	}
	if _, err := sq(ctx, conn, execute); err != nil {
		return err
	}
	rows, err := sq(ctx, conn, "EXPLAIN (ANALYZE, BUFFERS) "+execute)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(a.plans, name+".txt"), []byte(lines(rows)+"\n"), 0o644)
}

func (a *analytics) planOf(name string) string {
	b, _ := os.ReadFile(filepath.Join(a.plans, name+".txt"))
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		out = append(out, "    "+l)
	}
	return strings.Join(out, "\n")
}

// rowsOf reads the "rows=N" of the top node of a saved plan (the rows the
// statement answered).
func (a *analytics) rowsOf(name string) string {
	b, _ := os.ReadFile(filepath.Join(a.plans, name+".txt"))
	if m := regexp.MustCompile(`actual time=[0-9.]+\.\.[0-9.]+ rows=(\d+)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "?"
}

type queryResults struct {
	now                  string
	statsRows, logsRows  []string
	statsWorst, logWorst string
	statsMet, statsAll   int
	logsMet, logsAll     int
	sqlNote              string
}

var dollarRE = regexp.MustCompile(`\$[0-9]`)

// statsVerdict judges a stats request: p50 ≤ 100 ms and p99 ≤ 250 ms.
func statsVerdict(p50, p99 float64) string {
	switch {
	case p50 <= 100 && p99 <= 250:
		return "met"
	case p50 > 100 && p99 > 250:
		return fmt.Sprintf("**missed**: p50 %.1f×, p99 %.1f×", p50/100, p99/250)
	case p50 > 100:
		return fmt.Sprintf("**missed**: p50 %.1f×", p50/100)
	}
	return fmt.Sprintf("**missed**: p99 %.1f×", p99/250)
}

func verdict(v, target float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v <= target {
		return "met"
	}
	return fmt.Sprintf("**missed** (%.1f×)", v/target)
}

// logScenario is one logs request: its extra conditions (after tenant and
// env, $3…) and their arguments; rowFilter when it filters more than a time
// range (the handler's page then takes two steps).
type logScenario struct {
	name, desc, cond, args string
	rowFilter              bool
}

func (a *analytics) logScenarios(now time.Time) []logScenario {
	ts := func(t time.Time) string { return "'" + t.UTC().Format(time.RFC3339) + "'" }
	return []logScenario{
		{"none", "no filter (the default page)", "", "", false},
		{"range1h", "from/to: one hour two days ago", "created_at >= $3 AND created_at < $4", ts(now.Add(-49*time.Hour)) + ", " + ts(now.Add(-48*time.Hour)), false},
		{"key", fmt.Sprintf("key_id (one of %d keys)", a.cfg.bigKeys), "key_id = $3::uuid", "'" + a.key1 + "'", true},
		{"provider", "provider=google (8 %)", "provider = $3", "'google'", true},
		{"model", "model=gpt-4o", "model = $3", "'gpt-4o'", true},
		{"status429", "status=429", "status_code = $3", "429", true},
		{"status5xx", "status=5xx", "status_code >= $3 AND status_code < $4", "500, 600", true},
		{"stream", "stream=true", "stream = $3", "true", true},
		{"model24h", "from=now-24h, model=gpt-4o", "created_at >= $3 AND model = $4", ts(now.Add(-24*time.Hour)) + ", 'gpt-4o'", true},
		{"key_model_5xx", "key_id + model + status=5xx", "key_id = $3::uuid AND model = $4 AND status_code >= $5 AND status_code < $6",
			"'" + a.key1 + "', 'gpt-4o', 500, 600", true},
		{"all", "every filter: 7 days, key, provider, model, 5xx, stream=false",
			"created_at >= $3 AND created_at < $4 AND key_id = $5::uuid AND provider = $6 AND model = $7 AND status_code >= $8 AND status_code < $9 AND stream = $10",
			ts(now.Add(-7*24*time.Hour)) + ", " + ts(now) + ", '" + a.key1 + "', 'openai', 'gpt-4o', 500, 600, false", true},
	}
}

func (a *analytics) timeQueries(ctx context.Context) (queryResults, error) {
	var q queryResults
	if fp := handlerFingerprint(); fp != sqlFingerprint {
		q.sqlNote = fmt.Sprintf("**Warning:** internal/analytics/stats.go, logs.go or where.go changed since tools/cmd/bench copied their SQL (fingerprint %s,\nexpected %s): the timings below may not be those of the current handlers.", fp, sqlFingerprint)
		say("analytics", "warning: the handlers' SQL changed since tools/cmd/bench copied it (fingerprint %s, expected %s)", fp, sqlFingerprint)
	}
	now := a.now
	q.now = now.Format(time.RFC3339)
	worst := -1.0
	var stats []statsScenario
	if a.cfg.sqlParts["stats"] {
		stats = statsMatrix(a.cfg.days)
	}
	for _, sc := range stats {
		from := now.Add(-time.Duration(sc.days) * 24 * time.Hour)
		prep := fmt.Sprintf("PREPARE %s AS %s", sc.name(), statsSQL(sc.groupBy, sc.interval))
		exec := fmt.Sprintf("EXECUTE %s(%s)", sc.name(), statsArgs(a.bigTen, from, now, sc.interval))
		// The handler runs it with sorting off (its own transaction).
		ms, err := a.timedSQL(ctx, []string{"SET enable_sort = off", prep}, func(ctx context.Context, c *pgconn.PgConn) error {
			_, err := c.Exec(ctx, exec).ReadAll()
			return err
		})
		if err != nil {
			return q, fmt.Errorf("%s: %w", sc.name(), err)
		}
		if err := a.explain(ctx, sc.name(), "SET enable_sort = off; "+prep, exec); err != nil {
			return q, err
		}
		p50, p99 := pct(ms, 0.5), pct(ms, 0.99)
		ok := p50 <= 100 && p99 <= 250
		q.statsAll++
		if ok {
			q.statsMet++
		}
		v := statsVerdict(p50, p99)
		q.statsRows = append(q.statsRows, fmt.Sprintf("| %s | %s | %d d | %s | %d | %.1f | %.1f | %s |", sc.interval, sc.groupBy, sc.days,
			a.rowsOf(sc.name()), len(ms), p50, p99, v))
		say("analytics", "  stats %s: p50 %.1f ms, p99 %.1f ms (%d runs)", sc.name(), p50, p99, len(ms))
		if p50 > worst {
			worst, q.statsWorst = p50, sc.name()
		}
	}

	worst = -1.0
	var logs []logScenario
	if a.cfg.sqlParts["logs"] {
		logs = a.logScenarios(now)
	}
	for _, sc := range logs {
		where := "tenant_id = $1::uuid AND env = $2"
		if sc.cond != "" {
			where += " AND " + sc.cond
		}
		distinct := map[string]bool{}
		for _, d := range dollarRE.FindAllString(sc.cond, -1) {
			distinct[d] = true
		}
		nargs := 2 + len(distinct)
		cnt := fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM usage_logs WHERE %s LIMIT 10001) x", where)
		est := fmt.Sprintf("SELECT 1 FROM usage_logs WHERE %s", where)
		page := fmt.Sprintf("SELECT %s FROM usage_logs l WHERE %s ORDER BY l.created_at DESC, l.id DESC LIMIT $%d OFFSET $%d", logCols, where, nargs+1, nargs+2)
		if sc.rowFilter { // analytics.LogFilter.filtersRows: two steps
			page = fmt.Sprintf(`SELECT %[1]s FROM (SELECT created_at, id FROM usage_logs WHERE %[2]s
			ORDER BY created_at DESC, id DESC LIMIT $%[3]d OFFSET $%[4]d) p
			CROSS JOIN LATERAL (SELECT * FROM usage_logs u WHERE %[2]s AND u.created_at = p.created_at AND u.id = p.id LIMIT 1) l
			ORDER BY p.created_at DESC, p.id DESC`, logCols, where, nargs+1, nargs+2)
		}
		args := fmt.Sprintf("'%s', 'production'", a.bigTen)
		if sc.args != "" {
			args += ", " + sc.args
		}
		n := "logs_" + sc.name
		prepC, prepE, prepP := fmt.Sprintf("PREPARE c_%s AS %s", sc.name, cnt), fmt.Sprintf("PREPARE e_%s AS %s", sc.name, est),
			fmt.Sprintf("PREPARE p_%s AS %s", sc.name, page)
		execC, execE, execP := fmt.Sprintf("EXECUTE c_%s(%s)", sc.name, args), fmt.Sprintf("EXECUTE e_%s(%s)", sc.name, args),
			fmt.Sprintf("EXECUTE p_%s(%s, 50, 0)", sc.name, args)
		// What the handler does: the count under its budget (its own
		// transaction, on a second session), the planner's estimate on a
		// third session when the count has not answered within half the
		// budget (used when the budget runs out), and at the same time the
		// page.
		cconn, err := a.session(ctx)
		if err != nil {
			return q, err
		}
		// Estimate sessions: a hedge whose count answered first is not
		// waited for (the handler does not wait either); it hands its
		// session back when its EXPLAIN is done.
		const estSessions = 3
		esess := make(chan *pgx.Conn, estSessions)
		opened := 0
		closeSessions := func() { // waits for the hedges still running
			cconn.Close(ctx)
			for range opened {
				(<-esess).Close(ctx)
			}
		}
		for range estSessions {
			c, err := a.session(ctx)
			if err != nil {
				closeSessions()
				return q, err
			}
			esess <- c
			opened++
			if _, err := sq(ctx, c, prepE); err != nil {
				closeSessions()
				return q, err
			}
		}
		if _, err := sq(ctx, cconn, prepC); err != nil {
			closeSessions()
			return q, err
		}
		estimate := func(ctx context.Context) error {
			c := <-esess
			defer func() { esess <- c }()
			_, err := c.PgConn().Exec(ctx, "EXPLAIN (FORMAT JSON) "+execE).ReadAll()
			return err
		}
		estimated := 0
		var countMs, pageMs []float64
		count := func(ctx context.Context, c *pgconn.PgConn) error {
			st := time.Now()
			hedged := make(chan error, 1)
			hedge := time.AfterFunc(logCountBudgetMs*time.Millisecond/2, func() { hedged <- estimate(ctx) })
			_, err := c.Exec(ctx, fmt.Sprintf("BEGIN; SET LOCAL statement_timeout = '%dms'; SET LOCAL enable_seqscan = off; %s; COMMIT",
				logCountBudgetMs, execC)).ReadAll()
			started := !hedge.Stop()
			if err == nil {
				countMs = append(countMs, float64(time.Since(st).Microseconds())/1000)
				return nil
			}
			if pe, ok := err.(*pgconn.PgError); !ok || pe.Code != "57014" {
				return err
			}
			estimated++
			var eerr error
			if started {
				eerr = <-hedged
			} else {
				eerr = estimate(ctx)
			}
			countMs = append(countMs, float64(time.Since(st).Microseconds())/1000)
			if _, err := c.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
				return err
			}
			return eerr
		}
		ms, err := a.timedSQL(ctx, []string{prepP}, func(ctx context.Context, c *pgconn.PgConn) error {
			counted := make(chan error, 1)
			go func() { counted <- count(ctx, cconn.PgConn()) }()
			st := time.Now()
			_, err := c.Exec(ctx, execP).ReadAll()
			pageMs = append(pageMs, float64(time.Since(st).Microseconds())/1000)
			if cerr := <-counted; cerr != nil {
				return cerr
			}
			return err
		})
		closeSessions()
		if err != nil {
			return q, fmt.Errorf("%s: %w", n, err)
		}
		matched, err := a.matched(ctx, where, args)
		if err != nil {
			return q, err
		}
		if err := a.explain(ctx, n+".count", "SET enable_seqscan = off; "+prepC, execC); err != nil { // as the handler's count
			return q, err
		}
		if err := a.explain(ctx, n+".page", prepP, execP); err != nil {
			return q, err
		}
		p50, p99 := pct(ms, 0.5), pct(ms, 0.99)
		q.logsAll++
		if p50 <= 20 {
			q.logsMet++
		}
		q.logsRows = append(q.logsRows, fmt.Sprintf("| %s | %s | %d | %.1f | %.1f | %d of %d | %.1f | %.1f | %s |", sc.desc, matched, len(ms),
			pct(countMs, 0.5), pct(pageMs, 0.5), estimated, len(ms), p50, p99, verdict(p50, 20)))
		say("analytics", "  logs %s: p50 %.1f ms (count %.1f, page %.1f; %d of %d totals estimated)", sc.name, p50, pct(countMs, 0.5), pct(pageMs, 0.5), estimated, len(ms))
		if p50 > worst && sc.name != "none" {
			worst, q.logWorst = p50, n
		}
	}
	return q, nil
}

// matched counts the rows a logs filter matches.
func (a *analytics) matched(ctx context.Context, where, args string) (string, error) {
	conn, err := a.session(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := sq(ctx, conn, "SET max_parallel_workers_per_gather = 2; PREPARE m AS SELECT count(*) FROM usage_logs WHERE "+where); err != nil {
		return "", err
	}
	return sq1(ctx, conn, "EXECUTE m("+args+")")
}
