package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"
)

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
	var b strings.Builder
	fmt.Fprintf(&b, "### Results of the last `bench analytics`\n\n")
	fmt.Fprintf(&b, "- command: %s\n", cmdline)
	fmt.Fprintf(&b, "- date: %s; commit: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit("services"))
	fmt.Fprintf(&b, "- machine: %d cores (%s), %d GiB memory; %s; PostgreSQL %s (shared_buffers %s, work_mem %s, jit %s, max_parallel_workers_per_gather %s); %s\n",
		m.cores, m.cpuModel, m.memTotal, goShort(), pgVersion, show("shared_buffers"), show("work_mem"), show("jit"),
		show("max_parallel_workers_per_gather"), strings.SplitN(natsVersion, "\n", 2)[0])
	fmt.Fprintf(&b, "- load average (1/5/15 min) at the start: %s; at the end: %s\n", loadBefore, loadavg())
	fmt.Fprintf(&b, "- %s\n", a.freezeNote())
	fmt.Fprintf(&b, "- wall time of the whole run: %d s\n\n", elapsed)
	fmt.Fprintf(&b, "#### Ingestion (JetStream → Postgres), fresh database\n\n%s\n\n", ingestMD)
	if a.bigMD != "" {
		fmt.Fprintf(&b, "#### Ingestion into the generated database\n\n%s\n\n", a.bigMD)
	}
	if g.nLogs != "" {
		gen := ""
		if g.genMs > 0 {
			gen = fmt.Sprintf(" Generation: rows %d s (INSERT … SELECT FROM generate_series, %d sessions), index rebuild %d s, rollups %d s, ordering the closed rollup periods %d s, VACUUM ANALYZE %d s.",
				g.genMs/1000, m.cores, g.idxMs/1000, g.rollupMs/1000, g.orderMs/1000, g.vacMs/1000)
		}
		if g.bigOnlyRollups {
			gen += " The rollups hold the big tenant's rows only (rollups phase, BENCH_ANALYTICS_ROLLUP_TENANT=big): the noise tenants' would not fit on this machine's disk."
		}
		fmt.Fprintf(&b, `#### Data

%s usage_logs rows over %d days (%s .. %s), %s of them of the big tenant in production (%d keys, 8 provider/model
pairs), the rest spread over %d noise tenants and development. usage_logs (%s partitions) %s + %s of indexes; the six
rollup tables %s in all (key rollups: %s hourly rows, %s of the big tenant in production; %s daily, %s).%s

`, g.nLogs, c.days, g.tStart, g.tEnd, g.nBigProd, c.bigKeys, c.noise, g.nParts, g.szLogs, g.szLogsIdx, g.szRoll,
			g.nRoll, g.nRollBig, g.nDay, g.nDayBig, gen)
	}
	if q.sqlNote != "" && (len(q.statsRows) > 0 || len(q.logsRows) > 0) {
		b.WriteString(q.sqlNote + "\n\n")
	}
	if len(q.statsRows) > 0 {
		fmt.Fprintf(&b, `#### Stats SQL (every request the API accepts)

The handler's SQL as a prepared statement in one session (session parameters as on the gateway's pool: %s), run up to
%d times (at least %d, then until %d s have passed); ms from sending EXECUTE to the last row received. p99 is the
nearest rank (the maximum below 100 runs). *rows* is what the query answers (buckets × groups). Target: p50 ≤ 100 ms and
p99 ≤ 250 ms. Met by %d of %d.

| interval | group_by | range | rows | runs | p50 ms | p99 ms | verdict |
|---|---|---:|---:|---:|---:|---:|---|
%s

`, params, c.runs, minRuns, int(c.budget.Seconds()), q.statsMet, q.statsAll, strings.Join(q.statsRows, "\n"))
	}
	if len(q.logsRows) > 0 {
		fmt.Fprintf(&b, `#### Log pages SQL (limit 50, offset 0)

What the handler runs: the count behind total (at most 10 001 rows, sequential scans off) in its own transaction under a %d ms
statement_timeout, Postgres's estimate (EXPLAIN) when that runs out, and at the same time on a second connection the page;
*p50* and *p99* are the wall time of both. Target: ≤ 20 ms. Met by %d of %d.

| filter (big tenant, production) | matching rows | runs | count p50 ms | page p50 ms | totals estimated | p50 ms | p99 ms | verdict |
|---|---:|---:|---:|---:|---:|---:|---:|---|
%s

`, logCountBudgetMs, q.logsMet, q.logsAll, strings.Join(q.logsRows, "\n"))
	}
	if len(q.statsRows) > 0 {
		fmt.Fprintf(&b, "Slowest stats request (%s), EXPLAIN (ANALYZE, BUFFERS):\n\n%s\n\n", q.statsWorst, a.planOf(q.statsWorst))
	}
	if len(q.logsRows) > 0 {
		fmt.Fprintf(&b, "Slowest filtered logs request (%s): its count without the budget, then its page:\n\n%s\n\n%s\n\n", q.logWorst,
			a.planOf(q.logWorst+".count"), a.planOf(q.logWorst+".page"))
	}
	if len(a.http) > 0 {
		fmt.Fprintf(&b, `#### Through the HTTP API

bin/platform-backend and bin/gateway (GATEWAY_ROLE=proxy, MIGRATE_ON_START=false) on the generated database; the big
tenant is a real platform tenant (enterprise plan) and every request carries its member's scoped token, so
introspection (cached), the rate limiter, pool, handler and JSON encoding are counted. Requests are paced under the
analytics limit (60 a minute per user and tenant); ms from sending the request to the last byte of the answer.

| request | runs | p50 ms | p99 ms | max ms | answer bytes | verdict |
|---|---:|---:|---:|---:|---:|---|
%s

`, strings.Join(a.http, "\n"))
	}
	b.WriteString("Every EXPLAIN (ANALYZE, BUFFERS) is in `BENCH_ANALYTICS_PLANS` when set.")
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

// freezeNote is the header line on the machine's freezes in each phase.
func (a *analytics) freezeNote() string {
	if a.probe == nil {
		return "machine freezes: not watched (BENCH_FREEZE_MS=0, or no SCHED_FIFO here)"
	}
	var parts []string
	for _, w := range a.windows {
		fs := a.probe.during(w.from, w.to)
		parts = append(parts, fmt.Sprintf("%s %s, %.1f %% of its CPU time", w.name, describeFreezes(fs),
			100*frozenShare(fs, w.from, w.to, runtime.NumCPU())))
	}
	if len(parts) == 0 {
		parts = append(parts, "no phase timed")
	}
	return fmt.Sprintf("machine freezes (a SCHED_FIFO probe thread on every CPU woke ≥ %d ms late; the share is their lateness over the phase's CPU time, a lower bound): %s",
		a.cfg.freezeThreshold.Milliseconds(), strings.Join(parts, "; "))
}
