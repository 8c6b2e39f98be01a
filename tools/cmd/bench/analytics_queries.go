package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The SQL of internal/analytics/stats.go (rollupSource and its one grouped
// query) and logs.go (listLogs), copied; sqlFingerprint says when.
const (
	logCols = `id::text, request_id, created_at, key_id::text, key_name, env, provider, model, path, status_code, stream,
		latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body`
	rollupCols = `bucket, provider, model, key_id, status_code, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
		total_tokens, cost_usd, latency_sum_ms, latency_hist`
	// rollupSource, interval=day: whole UTC days from the daily table, the
	// partial first and last days from the hourly one. interval=hour: hourly only.
	srcDay = `(SELECT ` + rollupCols + ` FROM usage_rollups_daily WHERE tenant_id = $1::uuid AND env = $2 AND bucket >= $3 AND bucket < $4
		UNION ALL
		SELECT ` + rollupCols + ` FROM usage_rollups_hourly WHERE tenant_id = $1::uuid AND env = $2
			AND ((bucket >= $5 AND bucket < $3) OR (bucket >= $6 AND bucket < $7))) r`
	srcHour = `(SELECT ` + rollupCols + ` FROM usage_rollups_hourly WHERE tenant_id = $1::uuid AND env = $2 AND bucket >= $3 AND bucket < $4) r`
)

// statsSQL is the stats handler's grouped query over src.
func (a *analytics) statsSQL(src, interval string) string {
	hist := ""
	for k := 1; k <= len(a.bounds)+1; k++ {
		hist += fmt.Sprintf(", sum(r.latency_hist[%d])", k)
	}
	return fmt.Sprintf(`SELECT date_trunc('%s', r.bucket), model, sum(r.requests), sum(r.errors), sum(r.unknown_usage),
		sum(r.prompt_tokens), sum(r.completion_tokens), sum(r.total_tokens), sum(r.cost_usd), sum(r.latency_sum_ms)%s
		FROM %s GROUP BY 1, 2 ORDER BY 1`, interval, hist, src)
}

// statsStatements are the stats request's statements (one today).
var statsStatements = []string{"grouped"}

// timed runs prepares, then the iteration (the statements of one request)
// up to RUNS times in one session, stopping once minRuns are done and the
// budget has passed. It returns one row per iteration: its total ms, then
// each statement's ms (each statement's result fully read, as psql \timing).
func (a *analytics) timed(ctx context.Context, prepares, iteration []string) ([][]float64, error) {
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
	var iters [][]float64
	for i := 1; i <= a.cfg.runs; i++ {
		row := []float64{0}
		for _, s := range iteration {
			st := time.Now()
			if _, err := conn.PgConn().Exec(ctx, s).ReadAll(); err != nil {
				return nil, fmt.Errorf("%s: %w", s, err)
			}
			ms := float64(time.Since(st).Microseconds()) / 1000
			row[0] += ms
			row = append(row, ms)
		}
		iters = append(iters, row)
		if i >= minRuns && time.Since(t0) > a.cfg.budget {
			break
		}
	}
	return iters, nil
}

// iterStat is "p50 max n" of column col over iterations first..last
// (1-based); p50 is the lower middle value, as before.
func iterStat(iters [][]float64, col, first, last int) (p50, mx string, n int) {
	var v []float64
	for i, r := range iters {
		if i+1 >= first && i+1 <= last {
			v = append(v, r[col])
		}
	}
	if len(v) == 0 {
		return "–", "–", 0
	}
	sort.Float64s(v)
	return fmt.Sprintf("%.1f", v[(len(v)+1)/2-1]), fmt.Sprintf("%.1f", v[len(v)-1]), len(v)
}

// tableRow renders "| label | runs | p50 1–5 | p50 6+ | max |" and the
// steady figure (p50 of runs 6+, or of 1–5 when there are no more).
func tableRow(label string, iters [][]float64, col int) (row, steady string) {
	c, _, _ := iterStat(iters, col, 1, 5)
	s, _, n6 := iterStat(iters, col, 6, 1<<30)
	_, mx, n := iterStat(iters, col, 1, 1<<30)
	steady = s
	if n6 == 0 {
		steady = c
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s |", label, n, c, s, mx), steady
}

// explain writes EXPLAIN (ANALYZE, BUFFERS) of the 1st execution (custom
// plan) to NAME.STMT.custom.txt and of the 6th (past the 5 custom plans:
// what a long-lived pgx connection runs) to NAME.STMT.txt.
func (a *analytics) explain(ctx context.Context, name, stmt, prepare, execute string) error {
	conn, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := sq(ctx, conn, prepare); err != nil {
		return err
	}
	for i := 1; i <= 6; i++ {
		if i != 1 && i != 6 {
			if _, err := sq(ctx, conn, execute); err != nil {
				return err
			}
			continue
		}
		rows, err := sq(ctx, conn, "EXPLAIN (ANALYZE, BUFFERS) "+execute)
		if err != nil {
			return err
		}
		f := filepath.Join(a.plans, name+"."+stmt+".txt")
		if i == 1 {
			f = filepath.Join(a.plans, name+"."+stmt+".custom.txt")
		}
		if err := os.WriteFile(f, []byte(lines(rows)+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (a *analytics) planOf(name string) string {
	b, _ := os.ReadFile(filepath.Join(a.plans, name+".txt"))
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		out = append(out, "    "+l)
	}
	return strings.Join(out, "\n")
}

type queryResults struct {
	now, from30                   string
	statsRows, logsRows           []string
	targetsLogs                   []string
	st, stHour                    string
	slowStats, worstLogs, sqlNote string
}

var dollarRE = regexp.MustCompile(`\$[0-9]`)

func verdictMs(v string, target float64) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return "–"
	}
	if f <= target {
		return "**met**"
	}
	return fmt.Sprintf("**missed** by %.0f ms (%.1f×)", f-target, f/target)
}

func (a *analytics) timeQueries(ctx context.Context, g generated) (queryResults, error) {
	var q queryResults
	if fp := handlerFingerprint(); fp != sqlFingerprint {
		q.sqlNote = fmt.Sprintf("**Warning:** internal/analytics/stats.go or logs.go changed since tools/cmd/bench copied their SQL (fingerprint %s,\nexpected %s): the timings below may not be those of the current handlers.", fp, sqlFingerprint)
		say("analytics", "warning: the handlers' SQL changed since tools/cmd/bench copied it (fingerprint %s, expected %s)", fp, sqlFingerprint)
	}
	now := time.Now().UTC().Truncate(time.Second)
	from30 := now.AddDate(0, 0, -30)
	from24 := now.Add(-24 * time.Hour)
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	q.now, q.from30 = ts(now), ts(from30)
	// The arguments rollupSource computes for [from30, now).
	fromHour := from30.Truncate(time.Hour)
	firstDay := time.Date(fromHour.Year(), fromHour.Month(), fromHour.Day(), 0, 0, 0, 0, time.UTC)
	if !firstDay.Equal(fromHour) {
		firstDay = firstDay.AddDate(0, 0, 1)
	}
	lastDay := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if lastDay.Before(firstDay) {
		lastDay = firstDay
	}
	edge := lastDay
	if !edge.After(fromHour) {
		edge = fromHour
	}
	argsDay := fmt.Sprintf("'%s', 'production', '%s', '%s', '%s', '%s', '%s'", a.bigTen, ts(firstDay), ts(lastDay), ts(fromHour), ts(edge), ts(now))
	argsHour := fmt.Sprintf("'%s', 'production', '%s', '%s'", a.bigTen, ts(fromHour), ts(now))

	statsScenario := func(name, label, src, args, interval string) (steady, slow string, err error) {
		var prep, iter []string
		for _, st := range statsStatements {
			prep = append(prep, fmt.Sprintf("PREPARE %s_%s AS %s", name, st, a.statsSQL(src, interval)))
			iter = append(iter, fmt.Sprintf("EXECUTE %s_%s(%s)", name, st, args))
		}
		say("analytics", "timing stats, %s (up to %d runs, %d s)", label, a.cfg.runs, int(a.cfg.budget.Seconds()))
		iters, err := a.timed(ctx, prep, iter)
		if err != nil {
			return "", "", err
		}
		row, total := tableRow("**GET /analytics/stats**, "+label+": its query", iters, 0)
		q.statsRows = append(q.statsRows, row)
		slowV := -1.0
		for i, st := range statsStatements {
			row, s := tableRow("&nbsp;&nbsp;"+st, iters, i+1)
			q.statsRows = append(q.statsRows, row)
			if f, _ := strconv.ParseFloat(s, 64); f > slowV {
				slowV, slow = f, st
			}
			if err := a.explain(ctx, name, st, prep[i], iter[i]); err != nil {
				return "", "", err
			}
		}
		return total, slow, nil
	}
	var err error
	if q.stHour, _, err = statsScenario("stats_hour", "30 days, interval=hour (hourly table only), group_by=model", srcHour, argsHour, "hour"); err != nil {
		return q, err
	}
	if q.st, q.slowStats, err = statsScenario("stats_day", fmt.Sprintf("30 days (%s .. %s), interval=day (the default over 48 h), group_by=model", q.from30, q.now), srcDay, argsDay, "day"); err != nil {
		return q, err
	}

	// Logs scenarios (internal/analytics/logs.go), limit 50 offset 0.
	scenarios := []struct{ name, desc, cond, args string }{
		{"none", "no filter (the default page)", "", ""},
		{"model", "model=gpt-4o", "model = $3", "'gpt-4o'"},
		{"status5xx", "status=5xx", "status_code >= $3 AND status_code < $4", "500, 600"},
		{"key", fmt.Sprintf("key_id=(one of the %d keys)", a.cfg.bigKeys), "key_id = $3::uuid", "'" + a.key1 + "'"},
		{"model24h", "from=now-24h, model=gpt-4o", "created_at >= $3 AND model = $4", fmt.Sprintf("'%s', 'gpt-4o'", ts(from24))},
	}
	worstV := -1.0
	for _, sc := range scenarios {
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
		page := fmt.Sprintf("SELECT %s\n\t\tFROM usage_logs WHERE %s ORDER BY created_at DESC, id DESC LIMIT $%d OFFSET $%d", logCols, where, nargs+1, nargs+2)
		args := fmt.Sprintf("'%s', 'production'", a.bigTen)
		if sc.args != "" {
			args += ", " + sc.args
		}
		say("analytics", "timing logs, %s (up to %d runs, %d s)", sc.desc, a.cfg.runs, int(a.cfg.budget.Seconds()))
		prepC, prepP := fmt.Sprintf("PREPARE c_%s AS %s", sc.name, cnt), fmt.Sprintf("PREPARE p_%s AS %s", sc.name, page)
		execC, execP := fmt.Sprintf("EXECUTE c_%s(%s)", sc.name, args), fmt.Sprintf("EXECUTE p_%s(%s, 50, 0)", sc.name, args)
		iters, err := a.timed(ctx, []string{prepC, prepP}, []string{execC, execP})
		if err != nil {
			return q, err
		}
		matched, err := a.matched(ctx, where, args)
		if err != nil {
			return q, err
		}
		row, v := tableRow(fmt.Sprintf("**GET /analytics/logs**, %s (%s matching rows): count + page", sc.desc, matched), iters, 0)
		q.logsRows = append(q.logsRows, row)
		row, _ = tableRow("&nbsp;&nbsp;total: count(*) of at most 10 001 rows", iters, 1)
		q.logsRows = append(q.logsRows, row)
		row, _ = tableRow("&nbsp;&nbsp;page (limit 50)", iters, 2)
		q.logsRows = append(q.logsRows, row)
		q.targetsLogs = append(q.targetsLogs, fmt.Sprintf("| GET /analytics/logs, offset 0, %s | ≤ 50 ms | %s ms | %s |", sc.desc, v, verdictMs(v, 50)))
		if err := a.explain(ctx, "logs_"+sc.name, "count", prepC, execC); err != nil {
			return q, err
		}
		if err := a.explain(ctx, "logs_"+sc.name, "page", prepP, execP); err != nil {
			return q, err
		}
		if f, _ := strconv.ParseFloat(v, 64); sc.name != "none" && f > worstV {
			worstV, q.worstLogs = f, sc.name
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
	if _, err := sq(ctx, conn, "PREPARE m AS SELECT count(*) FROM usage_logs WHERE "+where); err != nil {
		return "", err
	}
	return sq1(ctx, conn, "EXECUTE m("+args+")")
}

func (a *analytics) report(ctx context.Context, loadBefore string, elapsed int, ingestMD string, q queryResults) (string, error) {
	c := a.cfg
	conn, err := a.session(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	show := func(p string) string { v, _ := sq1(ctx, conn, "SHOW "+p); return v }
	pgVersion, _, _ := strings.Cut(show("server_version"), " ")
	natsVersion := output("nats-server", "--version")
	if natsVersion == "?" {
		natsVersion = output("/usr/sbin/nats-server", "--version")
	}
	if natsVersion == "?" {
		natsVersion = "nats-server"
	}
	m := thisMachine()
	cmdline := "`bench analytics`"
	if o := overrides("BENCH_ANALYTICS", "INGEST_BENCH_"); o != "" {
		cmdline += " with " + o
	}
	params := strings.Join(c.pgParams, " ")
	if params == "" {
		params = "none"
	}
	g := a.gen
	sqlBlock := ""
	if q.sqlNote != "" {
		sqlBlock = q.sqlNote + "\n\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### Results of the last `bench analytics`\n\n")
	fmt.Fprintf(&b, "- command: %s\n", cmdline)
	fmt.Fprintf(&b, "- date: %s; commit: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit("services"))
	fmt.Fprintf(&b, "- machine: %d cores (%s), %d GiB memory; %s; PostgreSQL %s (shared_buffers %s, work_mem %s, jit %s, max_parallel_workers_per_gather %s); %s\n",
		m.cores, m.cpuModel, m.memTotal, goShort(), pgVersion, show("shared_buffers"), show("work_mem"), show("jit"),
		show("max_parallel_workers_per_gather"), strings.SplitN(natsVersion, "\n", 2)[0])
	fmt.Fprintf(&b, "- load average (1/5/15 min) at the start: %s; at the end: %s\n", loadBefore, loadavg())
	fmt.Fprintf(&b, "- wall time of the whole run: %d s\n\n", elapsed)
	fmt.Fprintf(&b, "#### Ingestion (JetStream → Postgres)\n\n%s\n\n#### Analytics queries\n\n", ingestMD)
	fmt.Fprintf(&b, `%sData: %s usage_logs rows over %d days (%s .. %s), %s of them of the big tenant in production
(%d keys, 8 provider/model pairs), the rest spread over %d noise tenants and development. Rollups: %s hourly
rows (%s of the big tenant in production), %s daily (%s). Sizes: usage_logs (%s partitions: one per
month and the default one) %s + %s of indexes; usage_rollups_hourly %s, usage_rollups_daily %s (with indexes). Generation: rows %d s (%d
sessions of INSERT … SELECT FROM generate_series), index rebuild %d s, rollups (bulk GROUP BY, hourly from the rows,
daily from the hourly) %d s, VACUUM ANALYZE %d s: %d s in all.

Each scenario is the handler's SQL as prepared statements in one session, like one pooled pgx connection (ms measured by
the client from sending EXECUTE to the last row received, results transferred and discarded), run up to %d times (at least %d, then until %d s have passed).
Session parameters as on the gateway's pool (its WithRuntimeParam calls): %s. Runs 1–5 use custom plans; from the
6th execution Postgres may switch a prepared statement to its generic plan (unless plan_cache_mode forces custom plans),
which is what a long-lived gateway connection runs: the target verdicts use the p50 of runs 6+.

| scenario (big tenant, production) | runs | p50 ms, runs 1–5 | p50 ms, runs 6+ | max ms |
|---|---:|---:|---:|---:|
%s
%s

| target | goal | measured (p50, runs 6+) | verdict |
|---|---|---:|---|
| GET /analytics/stats, 30 days (interval=day, the default) | ≤ 200 ms | %s ms | %s |
| GET /analytics/stats, 30 days, interval=hour (not the target's request; for reference) | ≤ 200 ms | %s ms | %s |
%s

Slowest statement of the 30-day stats request (%s), EXPLAIN (ANALYZE, BUFFERS) of its 6th execution in a session:

%s

and of its 1st (custom plan):

%s
`, sqlBlock, g.nLogs, days, g.tStart, g.tEnd, g.nBigProd, c.bigKeys, c.noise, g.nRoll, g.nRollBig, g.nDay, g.nDayBig,
		g.nParts, g.szLogs, g.szLogsIdx, g.szRoll, g.szDay, g.genMs/1000, m.cores, g.idxMs/1000, g.rollupMs/1000, g.vacMs/1000, g.total(),
		c.runs, minRuns, int(c.budget.Seconds()), params,
		strings.Join(q.statsRows, "\n"), strings.Join(q.logsRows, "\n"),
		q.st, verdictMs(q.st, 200), q.stHour, verdictMs(q.stHour, 200), strings.Join(q.targetsLogs, "\n"),
		q.slowStats, a.planOf("stats_day."+q.slowStats), a.planOf("stats_day."+q.slowStats+".custom"))
	if q.worstLogs != "" {
		w := "logs_" + q.worstLogs
		fmt.Fprintf(&b, "\nSlowest logs request with a filter (%s): its total, 6th execution:\n\n%s\n\nits page, 6th execution:\n\n%s\n\nand its page, 1st execution (custom plan):\n\n%s\n",
			q.worstLogs, a.planOf(w+".count"), a.planOf(w+".page"), a.planOf(w+".page.custom"))
	}
	b.WriteString("\nAll plans (1st and 6th execution of every statement) are in `BENCH_ANALYTICS_PLANS` when set.")
	return b.String(), nil
}

// goShort is the Go release ("go1.26.8").
func goShort() string {
	f := strings.Fields(goVersion())
	if len(f) >= 3 {
		return f[2]
	}
	return "go?"
}
