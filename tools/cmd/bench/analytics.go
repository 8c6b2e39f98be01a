package main

// bench analytics: analytics and ingestion benchmarks of the gateway
// (docs/benchmarks.md, section "Analytics and ingestion"), in phases
// (BENCH_ANALYTICS_PHASES, all by default):
//
//	ingest     BenchmarkIngest (package ingest) publishes N realistic usage
//	           events to a fresh JetStream stream and times usage ingesters
//	           draining them into a fresh database: pre-filled stream, with
//	           publishing running concurrently, one and two loops.
//	data       creates BENCH_ANALYTICS_DB, applies the gateway migrations (their
//	           "-- +goose Up" sections), generates BENCH_ANALYTICS_ROWS (10 M)
//	           usage_logs rows over BENCH_ANALYTICS_DAYS (30) for one big tenant
//	           plus noise tenants, builds the per-dimension rollups from them in
//	           bulk (the ingester maintains them incrementally), rebuilds the
//	           indexes dropped for the load, orders the closed rollup periods
//	           with bin/gateway rollups order (as the retention job would
//	           have), VACUUM ANALYZE. With the http phase,
//	           the big tenant is a real tenant of a platform-backend started for
//	           it (its own database BENCH_ANALYTICS_DB_platform).
//	sql        times the exact SQL the handlers run (internal/analytics
//	           stats.go and logs.go) as prepared statements in one session:
//	           every stats request the API accepts (interval hour/day/month ×
//	           group_by model/provider/key/status × range 1 to 365 days) and log
//	           pages with each filter, p50/p99, EXPLAIN (ANALYZE, BUFFERS) of each.
//	http       starts platform-backend and a gateway (GATEWAY_ROLE=proxy: no
//	           retention job) on the generated database and times GET
//	           /analytics/stats and /analytics/logs with the tenant's scoped
//	           token, paced under the analytics limit (60 a minute).
//	order      (with BENCH_ANALYTICS_REUSE=1, instead of rollups) orders the
//	           closed rollup periods of the kept database, as the data phase
//	           does, then VACUUM ANALYZE.
//	rollups    (with BENCH_ANALYTICS_REUSE=1) empties the rollup tables and builds
//	           them again in bulk, from every row or, with
//	           BENCH_ANALYTICS_ROLLUP_TENANT=big, from the big tenant's only.
//	bigingest  BenchmarkIngest into the generated usage_logs (one loop and two,
//	           publishing concurrently); its rows are deleted afterwards.
//
// Targets (issue 16): stats p50 ≤ 100 ms and p99 ≤ 250 ms, log pages ≤ 20 ms,
// ingestion ≥ 40 000 events/s with one loop and ≥ 70 000 with two into a
// table already holding 100 M rows.
//
// Needs Postgres and NATS JetStream on 127.0.0.1 (as make test), go, and for
// the http phase bin/platform-backend and bin/gateway (make build).
//
// Environment (defaults in brackets):
//
//	BENCH_ANALYTICS_PHASES    phases to run ["ingest data sql http bigingest"]
//	BENCH_ANALYTICS_REUSE     1: keep the existing BENCH_ANALYTICS_DB (skip data) [0]
//	BENCH_ANALYTICS_PLATFORM  1: the data phase makes the big tenant a platform tenant
//	                          even without the http phase (for a later REUSE run) [0]
//	BENCH_ANALYTICS_ROWS      usage_logs rows to generate [10000000]
//	BENCH_ANALYTICS_DAYS      days the rows span, ending now [30]
//	BENCH_ANALYTICS_BIG_SHARE share of the rows that belong to the big tenant [0.7]
//	BENCH_ANALYTICS_TENANTS   noise tenants [200]
//	BENCH_ANALYTICS_KEYS      API keys of the big tenant (2 of them development) [20]
//	BENCH_ANALYTICS_RUNS      executions of every timed SQL scenario, at most [30]
//	BENCH_ANALYTICS_BUDGET    seconds per scenario after which it stops (after 8 runs) [10]
//	BENCH_ANALYTICS_HTTP_RUNS requests per HTTP scenario [8]
//	BENCH_ANALYTICS_KEEP      1: keep the database and the processes' logs afterwards [0]
//	BENCH_ANALYTICS_LOG_LEVEL the services' LOG_LEVEL in the http phase (info: the
//	                          gateway's access log gives each request's server time) [warn]
//	BENCH_ANALYTICS_PLANS     a directory to keep every EXPLAIN ANALYZE in [none]
//	BENCH_ANALYTICS_SQL       the sql phase's parts: stats and/or logs ["stats logs"]
//	BENCH_ANALYTICS_PGURL     server URL without database [postgres://postgres@127.0.0.1:5432]
//	BENCH_ANALYTICS_DB        the database to (re)create [trueport_bench_analytics]
//	INGEST_BENCH_EVENTS       events per ingestion run [200000]
//	INGEST_BENCH_BATCHES      ingester batch sizes, pre-filled stream ["1000 8000"
//	                          plus the gateway's default, read from NewIngester]
//	INGEST_BENCH_CONCURRENT_BATCHES  batch sizes with concurrent publishing [default]
//	INGEST_BENCH_TWO_INGESTERS_BATCHES  batch sizes with concurrent publishing and two
//	                          ingesters sharing the durable consumer [default]; empty: skip
//	INGEST_BENCH_BIG_BATCHES  batch size of the bigingest runs [default]; empty: skip
//	INGEST_BENCH_MSG_EVENTS   events per message, as the publisher batches them [256]
//	INGEST_BENCH_ENCODING     binary or json [binary]
//	BENCH_ANALYTICS_OUT       markdown file whose bench-analytics:begin/end block is
//	                          rewritten [docs/benchmarks.md]; empty: stdout only
//	BENCH_FREEZE_MS           a freeze probe (as in bench proxy) watches the phases;
//	                          the block's header gives each phase's gaps and the
//	                          share of its CPU time they took [15]; 0: no probe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

type analyticsConfig struct {
	// freezeThreshold: the lateness of the freeze probe that counts as the
	// machine standing still (BENCH_FREEZE_MS, as in bench proxy; 0: no probe).
	freezeThreshold            time.Duration
	rows, noise, bigKeys, runs int
	days, httpRuns, msgEvents  int
	phases                     map[string]bool
	sqlParts                   map[string]bool
	reuse                      bool
	encoding                   string
	bigShare                   string
	keep                       bool
	pgURL, db, plans, out      string
	ingest                     bool
	events                     int
	defBatch                   int
	batches, concBatches       string
	twoBatches, bigBatches     string
	pgParams                   []string
	budget                     time.Duration
}

const (
	chunk   = 500000
	minRuns = 8
)

func analyticsConfigFromEnv() (analyticsConfig, error) {
	var c analyticsConfig
	var err error
	if c.rows, err = envInt("BENCH_ANALYTICS_ROWS", 10000000); err != nil {
		return c, err
	}
	c.bigShare = envOr("BENCH_ANALYTICS_BIG_SHARE", "0.7")
	if f, err := strconv.ParseFloat(c.bigShare, 64); err != nil || f <= 0 || f >= 1 {
		return c, fmt.Errorf("BENCH_ANALYTICS_BIG_SHARE=%q: want a number between 0 and 1", c.bigShare)
	}
	if c.noise, err = envInt("BENCH_ANALYTICS_TENANTS", 200); err != nil {
		return c, err
	}
	if c.bigKeys, err = envInt("BENCH_ANALYTICS_KEYS", 20); err != nil {
		return c, err
	}
	if c.bigKeys < 3 {
		return c, fmt.Errorf("BENCH_ANALYTICS_KEYS must be at least 3")
	}
	if c.runs, err = envInt("BENCH_ANALYTICS_RUNS", 30); err != nil {
		return c, err
	}
	if c.days, err = envInt("BENCH_ANALYTICS_DAYS", 30); err != nil || c.days < 1 || c.days > 400 {
		return c, fmt.Errorf("BENCH_ANALYTICS_DAYS: want 1..400 (%v)", err)
	}
	if c.httpRuns, err = envInt("BENCH_ANALYTICS_HTTP_RUNS", 8); err != nil {
		return c, err
	}
	if c.msgEvents, err = envInt("INGEST_BENCH_MSG_EVENTS", 256); err != nil {
		return c, err
	}
	c.encoding = envOr("INGEST_BENCH_ENCODING", "binary")
	c.phases = map[string]bool{}
	for _, p := range strings.Fields(envOr("BENCH_ANALYTICS_PHASES", "ingest data sql http bigingest")) {
		switch p {
		case "ingest", "data", "rollups", "order", "sql", "http", "bigingest":
			c.phases[p] = true
		default:
			return c, fmt.Errorf("BENCH_ANALYTICS_PHASES: unknown phase %q (ingest data rollups order sql http bigingest)", p)
		}
	}
	c.reuse = os.Getenv("BENCH_ANALYTICS_REUSE") == "1"
	ms, err := envInt("BENCH_FREEZE_MS", 15)
	if err != nil {
		return c, err
	}
	c.freezeThreshold = time.Duration(ms) * time.Millisecond
	budget, err := envInt("BENCH_ANALYTICS_BUDGET", 10)
	if err != nil {
		return c, err
	}
	c.budget = time.Duration(budget) * time.Second
	c.keep = os.Getenv("BENCH_ANALYTICS_KEEP") == "1"
	c.pgURL = envOr("BENCH_ANALYTICS_PGURL", pgServer)
	c.db = envOr("BENCH_ANALYTICS_DB", "trueport_bench_analytics")
	c.plans = os.Getenv("BENCH_ANALYTICS_PLANS")
	c.sqlParts = map[string]bool{}
	for _, p := range strings.Fields(envOr("BENCH_ANALYTICS_SQL", "stats logs")) {
		if p != "stats" && p != "logs" {
			return c, fmt.Errorf("BENCH_ANALYTICS_SQL: unknown part %q (stats logs)", p)
		}
		c.sqlParts[p] = true
	}
	c.out = envSet("BENCH_ANALYTICS_OUT", "docs/benchmarks.md")
	c.ingest = c.phases["ingest"]
	if c.events, err = envInt("INGEST_BENCH_EVENTS", 200000); err != nil {
		return c, err
	}
	if c.defBatch, err = ingesterBatch(); err != nil {
		return c, err
	}
	def := strconv.Itoa(c.defBatch)
	c.batches = envSet("INGEST_BENCH_BATCHES", withDefault("1000 8000", c.defBatch))
	c.concBatches = envSet("INGEST_BENCH_CONCURRENT_BATCHES", def)
	c.twoBatches = envSet("INGEST_BENCH_TWO_INGESTERS_BATCHES", def)
	c.bigBatches = envSet("INGEST_BENCH_BIG_BATCHES", def)
	if c.pgParams, err = runtimeParams(); err != nil {
		return c, err
	}
	return c, nil
}

// withDefault adds def to the batch sizes in list: sorted, unique.
func withDefault(list string, def int) string {
	set := map[int]bool{def: true}
	for _, f := range strings.Fields(list) {
		if n, err := strconv.Atoi(f); err == nil {
			set[n] = true
		}
	}
	var ns []int
	for n := range set {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	var s []string
	for _, n := range ns {
		s = append(s, strconv.Itoa(n))
	}
	return strings.Join(s, " ")
}

type analytics struct {
	cfg     analyticsConfig
	dbURL   string
	tmp     string
	plans   string
	pgSet   string // SET statements of the gateway pool's session parameters
	ingest  []ingestRun
	evInfo  string
	ingPkg  string
	bounds  []string
	bigTen  string
	key1    string
	started time.Time
	now     time.Time // the end of the generated range, the "now" of the queries
	gen     generated
	plat    *benchPlatform
	http    []string // rows of the HTTP table
	bigMD   string
	// probe watches for the machine's freezes (nil: not watching) during
	// the phases, whose times are in windows.
	probe   *freezeProbe
	windows []phaseWindow
}

// phaseWindow is when a phase ran.
type phaseWindow struct {
	name     string
	from, to time.Time
}

// timed runs phase f and records its window.
func (a *analytics) timed(name string, f func() error) error {
	from := time.Now()
	err := f()
	a.windows = append(a.windows, phaseWindow{name, from, time.Now()})
	return err
}

// ingestRun is one BenchmarkIngest sub-benchmark.
type ingestRun struct {
	mode, batch, ingesters string
	wall                   float64
	m                      map[string]float64
}

func benchAnalytics(ctx context.Context) (err error) {
	a := &analytics{started: time.Now()}
	if a.cfg, err = analyticsConfigFromEnv(); err != nil {
		return err
	}
	c := a.cfg
	a.dbURL = c.pgURL + "/" + c.db + "?sslmode=disable"
	admin := c.pgURL + "/postgres?sslmode=disable"
	for _, kv := range c.pgParams {
		k, v, _ := strings.Cut(kv, "=")
		a.pgSet += fmt.Sprintf("SET %s = '%s'; ", k, v)
	}
	if a.tmp, err = os.MkdirTemp("", "trueport-bench-analytics."); err != nil {
		return err
	}
	if c.keep {
		say("analytics", "the processes' logs stay in %s (BENCH_ANALYTICS_KEEP=1)", a.tmp)
	} else {
		defer os.RemoveAll(a.tmp)
	}
	a.plans = c.plans
	if a.plans == "" {
		a.plans = filepath.Join(a.tmp, "plans")
	}
	if err := os.MkdirAll(a.plans, 0o755); err != nil {
		return err
	}
	keep := c.keep || c.reuse
	defer func() {
		if !keep {
			_ = pgExec(context.Background(), admin, "DROP DATABASE IF EXISTS "+c.db+" WITH (FORCE)")
			_ = pgExec(context.Background(), admin, "DROP DATABASE IF EXISTS "+c.db+"_platform WITH (FORCE)")
		}
	}()
	loadBefore := loadavg()
	dir, err := benchDir("BenchmarkIngest")
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(gatewayDir, dir)
	a.ingPkg = "./" + filepath.ToSlash(rel)
	if a.bounds, err = latencyBounds(); err != nil {
		return err
	}

	if c.freezeThreshold > 0 {
		if a.probe, err = startFreezeProbe(c.freezeThreshold); err != nil {
			say("analytics", "%v: the phases are not checked for the machine's freezes", err)
		} else {
			defer a.probe.close()
		}
	}

	// 1. Ingestion into a fresh database.
	ingestMD := "(not run: phase ingest not asked for)"
	if c.ingest {
		err := a.timed("ingest", func() error {
			for _, r := range []struct{ modes, batches, ing string }{
				{"prefilled", c.batches, "1"}, {"concurrent", c.concBatches, "1"}, {"concurrent", c.twoBatches, "2"},
			} {
				runs, err := a.runIngest(ctx, r.modes, r.batches, r.ing, "")
				if err != nil {
					return err
				}
				a.ingest = append(a.ingest, runs...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		ingestMD = a.ingestReport()
	}

	// 2. The analytics database (and, for the http phase, its platform).
	if c.reuse {
		say("analytics", "reusing %s (BENCH_ANALYTICS_REUSE=1)", c.db)
		if c.phases["rollups"] {
			if err := a.rebuildRollups(ctx, os.Getenv("BENCH_ANALYTICS_ROLLUP_TENANT") == "big"); err != nil {
				return err
			}
		} else if c.phases["order"] {
			if err := a.timed("order", func() error { return a.orderKept(ctx) }); err != nil {
				return err
			}
		}
		if a.gen, err = a.describe(ctx); err != nil {
			return err
		}
	} else if c.phases["data"] {
		if c.phases["http"] || os.Getenv("BENCH_ANALYTICS_PLATFORM") == "1" {
			if a.plat, err = a.startPlatform(ctx, admin, true); err != nil {
				return err
			}
			a.bigTen = a.plat.tenantID
			a.plat.stop()
		}
		if err := a.timed("data", func() error { a.gen, err = a.buildData(ctx, admin); return err }); err != nil {
			return err
		}
	} else if c.phases["sql"] || c.phases["http"] || c.phases["bigingest"] {
		return fmt.Errorf("phases sql, http and bigingest need the data phase or BENCH_ANALYTICS_REUSE=1")
	}

	// 3. Timed SQL.
	var queries queryResults
	if c.phases["sql"] {
		if err := a.timed("sql", func() error { queries, err = a.timeQueries(ctx); return err }); err != nil {
			return err
		}
	}

	// 4. Through the HTTP API.
	if c.phases["http"] {
		if err := a.timed("http", func() error { return a.timeHTTP(ctx, admin) }); err != nil {
			return err
		}
	}

	// 5. Ingestion into the usage_logs table that holds the generated rows
	// (indexes far larger than shared_buffers), then its rows go.
	if c.phases["bigingest"] && strings.TrimSpace(c.bigBatches) != "" {
		var big []ingestRun
		err := a.timed("bigingest", func() error {
			for _, r := range []struct{ modes, ing string }{{"prefilled", "1"}, {"concurrent", "1"}, {"concurrent", "2"}} {
				runs, err := a.runIngest(ctx, r.modes, c.bigBatches, r.ing, a.dbURL)
				if err != nil {
					return err
				}
				big = append(big, runs...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		a.bigMD = a.bigIngestReport(big)
	}
	elapsed := int(time.Since(a.started).Seconds())
	report, err := a.report(ctx, loadBefore, elapsed, ingestMD, queries)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s\n", report)
	if err := writeBlock("analytics", c.out, "bench-analytics", report, false); err != nil {
		return err
	}
	if keep {
		say("analytics", "kept database %s; plans in %s", c.db, a.plans)
	}
	say("analytics", "done in %d s", elapsed)
	return nil
}

var evInfoRE = regexp.MustCompile(`events: (\d+) \((\w+)\), (\d+) bytes on average, (\d+) a message, (\d+) violations \(([0-9.]+)%`)

// runIngest runs BenchmarkIngest with one set of knobs and reads its
// results (the benchmark's own metrics, in the standard benchmark format).
func (a *analytics) runIngest(ctx context.Context, modes, batches, ingesters, dbURL string) ([]ingestRun, error) {
	if strings.TrimSpace(batches) == "" {
		return nil, nil
	}
	into := ""
	if dbURL != "" {
		into = ", into " + a.cfg.db
	}
	say("analytics", "ingestion: %d events per run, %s, batch sizes: %s, ingesters: %s%s", a.cfg.events, modes, batches, ingesters, into)
	cmd := exec.CommandContext(ctx, "go", "test", a.ingPkg, "-run", "^$", "-bench", "^BenchmarkIngest$", "-benchtime=1x", "-timeout", "60m", "-v")
	cmd.Dir = gatewayDir
	cmd.Env = append(os.Environ(), "INGEST_BENCH_EVENTS="+strconv.Itoa(a.cfg.events), "INGEST_BENCH_MODES="+modes,
		"INGEST_BENCH_BATCHES="+batches, "INGEST_BENCH_INGESTERS="+ingesters, "INGEST_BENCH_DATABASE_URL="+dbURL,
		"INGEST_BENCH_PG_PARAMS=none", "INGEST_BENCH_MSG_EVENTS="+strconv.Itoa(a.cfg.msgEvents), "INGEST_BENCH_ENCODING="+a.cfg.encoding)
	out, err := cmd.CombinedOutput()
	if err != nil {
		lines := strings.Split(string(out), "\n")
		return nil, fmt.Errorf("BenchmarkIngest: %w\n%s", err, strings.Join(lines[max(0, len(lines)-30):], "\n"))
	}
	// The benchmark's b.Logf lines, as progress (and the one fact it only
	// logs: the events' size and violation mix).
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "events in") || strings.Contains(l, "events:") || strings.Contains(l, "rollup tables:") {
			fmt.Fprintln(os.Stderr, "  "+strings.TrimSpace(l))
		}
		if m := evInfoRE.FindStringSubmatch(l); m != nil && a.evInfo == "" {
			a.evInfo = fmt.Sprintf("%s encoding, %s bytes an event on average, %s events a message, %s %% of them with violations (%s violations)",
				m[2], m[3], m[4], m[6], m[5])
		}
	}
	lines, err := readBench(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	var runs []ingestRun
	for _, l := range lines {
		p := strings.Split(l.name, "/")
		if len(p) < 3 || p[0] != "BenchmarkIngest" {
			continue
		}
		r := ingestRun{mode: p[1], batch: strings.TrimPrefix(p[2], "batch="), ingesters: "1", wall: l.values["ns/op"] / 1e9, m: l.values}
		if len(p) >= 4 {
			r.ingesters = strings.TrimPrefix(p[3], "ingesters=")
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("BenchmarkIngest printed no results")
	}
	return runs, nil
}

// rate is "N events/s (batch B)" of the best matching run, or "not measured".
func (a *analytics) rate(mode, ingesters, batch string) (string, float64) {
	best, bb := 0.0, ""
	for _, r := range a.ingest {
		if r.mode == mode && r.ingesters == ingesters && (batch == "" || r.batch == batch) && r.m["events/s"] > best {
			best, bb = r.m["events/s"], r.batch
		}
	}
	if best == 0 {
		return "not measured", 0
	}
	return fmt.Sprintf("%.0f events/s (batch %s)", best, bb), best
}

// met is the verdict of rate v against target (events/s).
func met(v, target float64) string {
	switch {
	case v == 0:
		return ""
	case v >= target:
		return ", **met**"
	default:
		return fmt.Sprintf(", **missed** (%.0f %% of the target)", 100*v/target)
	}
}

func ingestTable(runs []ingestRun) string {
	var t strings.Builder
	t.WriteString("| stream | batch | ingesters | wall s | events/s | publish events/s | ingester CPU µs/event | Postgres CPU µs/event | nats-server CPU µs/event | machine CPU µs/event | CPU-s per 100 000 events (ingester + Postgres + NATS) |\n")
	t.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range runs {
		sum := (r.m["ingester_cpu_us/event"] + r.m["postgres_cpu_us/event"] + r.m["nats_cpu_us/event"]) / 10
		fmt.Fprintf(&t, "| %s | %s | %s | %.1f | **%.0f** | %.0f | %.1f | %.1f | %.1f | %.1f | %.2f |\n", r.mode, r.batch, r.ingesters, r.wall,
			r.m["events/s"], r.m["publish_events/s"], r.m["ingester_cpu_us/event"], r.m["postgres_cpu_us/event"], r.m["nats_cpu_us/event"],
			r.m["machine_cpu_us/event"], sum)
	}
	return strings.TrimRight(t.String(), "\n")
}

func (a *analytics) ingestReport() string {
	def := strconv.Itoa(a.cfg.defBatch)
	r1, v1 := a.rate("prefilled", "1", def)
	r2, v2 := a.rate("concurrent", "1", def)
	r5, v5 := a.rate("concurrent", "2", "")
	evInfo := a.evInfo
	if evInfo == "" {
		evInfo = "(size and violation mix not reported)"
	}
	return ingestTable(a.ingest) + fmt.Sprintf(`

Each run: %d events, %s; a fresh database and stream. *wall s* runs from the ingester's start
(pre-filled) or the first publish (concurrent) until the consumer has nothing pending or unacknowledged and usage_logs
holds every row. The benchmark's pool sets no session parameters (INGEST_BENCH_PG_PARAMS=none: the ingester has its own pool,
without the analytics pool's). CPU per event: *ingester* is the benchmark process (plus the publisher when concurrent), *Postgres* the
backends of the benchmark's database, *nats-server* the whole server, *machine* every busy CPU of the box; CPU-seconds per
100 000 events is the sum of the first three × 0.1.

Into a fresh database (the targets are for a table already holding 100 M rows, below; for reference): one loop, batch %s,
pre-filled %s%s; concurrent publishing %s%s; two loops, concurrent %s%s`,
		a.cfg.events, evInfo, def, r1, met(v1, 40000), r2, met(v2, 40000), r5, met(v5, 70000))
}

func (a *analytics) bigIngestReport(runs []ingestRun) string {
	var one, two float64
	for _, r := range runs {
		if r.mode == "concurrent" && r.ingesters == "1" {
			one = r.m["events/s"]
		}
		if r.mode == "concurrent" && r.ingesters == "2" {
			two = r.m["events/s"]
		}
	}
	return ingestTable(runs) + fmt.Sprintf(`

Into the generated database (usage_logs already holding %s rows, its indexes %s), batch %s, %d events a run
(deleted afterwards). Targets, publishing concurrently: one loop ≥ 40 000 events/s: %.0f%s; two loops ≥ 70 000: %.0f%s.`,
		a.gen.nLogs, a.gen.szLogsIdx, a.cfg.bigBatches, a.cfg.events, one, met(one, 40000), two, met(two, 70000))
}

// session opens one connection with the gateway pool's session parameters.
func (a *analytics) session(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, a.dbURL)
	if err != nil {
		return nil, err
	}
	if _, err := sq(ctx, conn, "SET TimeZone = 'UTC'; "+a.pgSet); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// sq runs sql (one or more statements) with the simple query protocol, as
// psql does, and returns every row of every result as text.
func sq(ctx context.Context, conn *pgx.Conn, sql string) ([][]string, error) {
	res, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, r := range res {
		if r.Err != nil {
			return nil, r.Err
		}
		for _, row := range r.Rows {
			var cols []string
			for _, c := range row {
				cols = append(cols, string(c))
			}
			out = append(out, cols)
		}
	}
	return out, nil
}

// sq1 is the first column of the first row ("" for none).
func sq1(ctx context.Context, conn *pgx.Conn, sql string) (string, error) {
	rows, err := sq(ctx, conn, sql)
	if err != nil || len(rows) == 0 || len(rows[0]) == 0 {
		return "", err
	}
	return rows[0][0], nil
}

// lines is the first column of every row, one per line.
func lines(rows [][]string) string {
	var s []string
	for _, r := range rows {
		s = append(s, r[0])
	}
	return strings.Join(s, "\n")
}

// generated describes the generated database.
type generated struct {
	tStart, tEnd                     string
	nLogs, nBig, nBigProd            string
	nRoll, nRollBig, nDay, nDayBig   string
	szLogs, szLogsIdx, szRoll, szDay string
	nParts                           string
	// bigOnlyRollups: the rollups hold the big tenant's rows only (the
	// rollups phase with BENCH_ANALYTICS_ROLLUP_TENANT=big).
	bigOnlyRollups                         bool
	genMs, idxMs, rollupMs, orderMs, vacMs int64
}

func (g generated) total() int64 {
	return (g.genMs + g.idxMs + g.rollupMs + g.orderMs + g.vacMs) / 1000
}

// migrationsDir is the directory of the gateway's goose migrations.
func migrationsDir() (string, error) {
	var found []string
	err := filepath.WalkDir(gatewayDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".sql") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("-- +goose Up")) && !slices.Contains(found, filepath.Dir(p)) {
			found = append(found, filepath.Dir(p))
		}
		return err
	})
	if err == nil && len(found) != 1 {
		err = fmt.Errorf("goose migrations: found in %d directories under %s %v, want 1", len(found), gatewayDir, found)
	}
	if err != nil {
		return "", err
	}
	return found[0], nil
}

// upSection is a migration's "-- +goose Up" section (Postgres runs a
// StatementBegin/End block as it is: the markers are comments).
func upSection(sql string) string {
	var out []string
	in := false
	for _, l := range strings.Split(sql, "\n") {
		if strings.HasPrefix(l, "-- +goose Up") {
			in = true
		}
		if in {
			out = append(out, l)
		}
		if strings.HasPrefix(l, "-- +goose Down") {
			break
		}
	}
	return strings.Join(out, "\n")
}

func (a *analytics) buildData(ctx context.Context, admin string) (generated, error) {
	c := a.cfg
	var g generated
	say("analytics", "creating %s and applying the gateway migrations (goose Up sections)", c.db)
	if err := pgExec(ctx, admin, "DROP DATABASE IF EXISTS "+c.db+" WITH (FORCE)"); err != nil {
		return g, err
	}
	if err := pgExec(ctx, admin, "CREATE DATABASE "+c.db); err != nil {
		return g, err
	}
	conn, err := pgx.Connect(ctx, a.dbURL)
	if err != nil {
		return g, err
	}
	defer conn.Close(ctx)
	dir, err := migrationsDir()
	if err != nil {
		return g, err
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.sql"))
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return g, err
		}
		if _, err := sq(ctx, conn, "SET client_min_messages = warning;\n"+upSection(string(b))); err != nil {
			return g, fmt.Errorf("%s: %w", f, err)
		}
	}

	// The migrations' indexes and unique constraints of usage_logs are
	// dropped for the bulk load and recreated afterwards from their own
	// definitions (building an index once is far faster than 10 M random
	// inserts into each of them). usage_logs is partitioned by month: the
	// definitions are the parent's, and creating them on the parent builds
	// them on every partition (pg_get_indexdef says "ON ONLY", which would not).
	recreate, err := sq(ctx, conn, `SELECT format('ALTER TABLE usage_logs ADD CONSTRAINT %I %s;', conname, pg_get_constraintdef(oid)) FROM pg_constraint
		WHERE conrelid = 'usage_logs'::regclass AND contype IN ('p', 'u')
	UNION ALL SELECT replace(pg_get_indexdef(indexrelid), ' ON ONLY ', ' ON ') || ';' FROM pg_index i WHERE indrelid = 'usage_logs'::regclass
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`)
	if err != nil {
		return g, err
	}
	const indexDefs = "SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_logs' ORDER BY indexname"
	before, err := sq(ctx, conn, indexDefs)
	if err != nil {
		return g, err
	}
	drops, err := sq(ctx, conn, `SELECT format('ALTER TABLE usage_logs DROP CONSTRAINT %I;', conname) FROM pg_constraint
		WHERE conrelid = 'usage_logs'::regclass AND contype IN ('p', 'u')
	UNION ALL SELECT format('DROP INDEX %I;', c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE indrelid = 'usage_logs'::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`)
	if err != nil {
		return g, err
	}
	if _, err := sq(ctx, conn, lines(drops)); err != nil {
		return g, err
	}

	if a.bigTen == "" {
		if a.bigTen, err = sq1(ctx, conn, "SELECT md5('trueport-bench-big-tenant')::uuid"); err != nil {
			return g, err
		}
	}
	end := time.Now().UTC().Truncate(time.Second)
	g.tEnd = end.Format(time.RFC3339)
	g.tStart = end.AddDate(0, 0, -c.days).Format(time.RFC3339)
	// The facts a later run with BENCH_ANALYTICS_REUSE=1 reads back.
	if _, err := sq(ctx, conn, fmt.Sprintf(`CREATE TABLE bench_meta (big_tenant uuid, t_start timestamptz, t_end timestamptz, days int);
		INSERT INTO bench_meta VALUES ('%s', '%s', '%s', %d)`, a.bigTen, g.tStart, g.tEnd, c.days)); err != nil {
		return g, err
	}
	// The month partitions of the generated range (the migration made the
	// previous, current and next two months'; the retention cycle keeps that
	// window with the same SQL function, usage.EnsurePartitions).
	if _, err := sq(ctx, conn, fmt.Sprintf(`SET TimeZone = 'UTC'; SELECT gateway_ensure_month_partition(t, m) FROM unnest('{usage_logs,violations}'::regclass[]) t,
	generate_series(date_trunc('month', timestamptz '%s'), timestamptz '%s', interval '1 month') m`, g.tStart, g.tEnd)); err != nil {
		return g, err
	}
	workers := runtime.NumCPU()
	say("analytics", "generating %d usage_logs rows (%d parallel sessions, chunks of %d, big tenant %s)", c.rows, workers, chunk, a.bigTen)
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc, err := pgx.Connect(ctx, a.dbURL)
			if err != nil {
				errs[w] = err
				return
			}
			defer wc.Close(ctx)
			for lo := w*chunk + 1; lo <= c.rows; lo += workers * chunk {
				hi := min(lo+chunk-1, c.rows)
				if _, err := sq(ctx, wc, a.genSQL(g.tStart, lo, hi)); err != nil {
					errs[w] = fmt.Errorf("row generation: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return g, e
		}
	}
	g.genMs = time.Since(t0).Milliseconds()
	say("analytics", "  rows inserted in %d s; rebuilding the usage_logs indexes", g.genMs/1000)
	t0 = time.Now()
	if _, err := sq(ctx, conn, "SET maintenance_work_mem = '1GB';\n"+lines(recreate)); err != nil {
		return g, err
	}
	g.idxMs = time.Since(t0).Milliseconds()
	after, err := sq(ctx, conn, indexDefs)
	if err != nil {
		return g, err
	}
	if lines(after) != lines(before) {
		return g, fmt.Errorf("the recreated usage_logs indexes differ from the migrations'")
	}

	say("analytics", "  indexes rebuilt in %d s; building the rollups in bulk", g.idxMs/1000)
	t0 = time.Now()
	if err := a.buildRollups(ctx, conn, ""); err != nil {
		return g, err
	}
	g.rollupMs = time.Since(t0).Milliseconds()
	say("analytics", "  rollups built in %d s; ordering the closed periods as the retention job does", g.rollupMs/1000)
	t0 = time.Now()
	if err := a.orderRollups(ctx); err != nil {
		return g, err
	}
	g.orderMs = time.Since(t0).Milliseconds()
	say("analytics", "  rollup periods ordered in %d s; VACUUM ANALYZE", g.orderMs/1000)
	t0 = time.Now()
	if err := vacuumAnalyze(ctx, conn); err != nil {
		return g, err
	}
	g.vacMs = time.Since(t0).Milliseconds()
	d, err := a.describe(ctx)
	d.genMs, d.idxMs, d.rollupMs, d.orderMs, d.vacMs = g.genMs, g.idxMs, g.rollupMs, g.orderMs, g.vacMs
	return d, err
}

// rollupTables are the gateway's rollup tables (migration 00006).
var rollupTables = []string{"usage_rollups_model_hourly", "usage_rollups_model_daily", "usage_rollups_key_hourly", "usage_rollups_key_daily",
	"usage_rollups_status_hourly", "usage_rollups_status_daily"}

// rebuildRollups empties the rollup tables of the kept database and builds
// them again in bulk, from every row or (bigOnly) from the big tenant's only,
// then VACUUM ANALYZE: the rollups phase, for a database whose data phase
// stopped after its indexes.
func (a *analytics) rebuildRollups(ctx context.Context, bigOnly bool) error {
	conn, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tenant, what := "", "every tenant's rows"
	if bigOnly {
		meta, err := sq(ctx, conn, `SELECT big_tenant FROM bench_meta`)
		if err != nil || len(meta) == 0 || len(meta[0]) == 0 {
			return fmt.Errorf("rollups phase: no bench_meta in the kept database (%v)", err)
		}
		tenant, what = meta[0][0], "the big tenant's rows"
	}
	say("analytics", "rollups phase: rebuilding the rollups from %s, a month partition at a time", what)
	t0 := time.Now()
	// The rebuilt periods are in bucket order again: their orderings go.
	if _, err := sq(ctx, conn, "TRUNCATE "+strings.Join(rollupTables, ", ")+`;
		DO $$ BEGIN IF to_regclass('rollup_orderings') IS NOT NULL THEN TRUNCATE rollup_orderings; END IF; END $$`); err != nil {
		return err
	}
	if err := a.buildRollups(ctx, conn, tenant); err != nil {
		return err
	}
	say("analytics", "  rollups built in %d s; ordering the closed periods", time.Since(t0).Milliseconds()/1000)
	if err := a.orderRollups(ctx); err != nil {
		return err
	}
	say("analytics", "  done in %d s; VACUUM ANALYZE", time.Since(t0).Milliseconds()/1000)
	return vacuumAnalyze(ctx, conn)
}

// orderKept orders the closed rollup periods of a kept database (the order
// phase, for a database generated before the data phase ordered them; it
// must be migrated to 00018), then VACUUM ANALYZE.
func (a *analytics) orderKept(ctx context.Context) error {
	conn, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	t0 := time.Now()
	if err := a.orderRollups(ctx); err != nil {
		return err
	}
	say("analytics", "order phase: rollup periods ordered in %d s; VACUUM ANALYZE", time.Since(t0).Milliseconds()/1000)
	return vacuumAnalyze(ctx, conn)
}

// orderRollups rewrites the closed rollup periods in key order with the
// gateway's own command ("gateway rollups order", bin/gateway), as its
// retention job does two days after each period ends: the bulk build
// writes them in bucket order, as the ingester does, and a production
// database holds its closed periods ordered.
func (a *analytics) orderRollups(ctx context.Context) error {
	if st, err := os.Stat("bin/gateway"); err != nil || st.Mode()&0o111 == 0 {
		return fmt.Errorf("bin/gateway is missing: run make build (the data phase orders the rollups with it)")
	}
	cmd := exec.CommandContext(ctx, "bin/gateway", "rollups", "order")
	cmd.Env = append(os.Environ(), "APP_ENV=dev", "GATEWAY_DATABASE_URL="+a.dbURL)
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	say("analytics", "  gateway rollups order: %s", lines[len(lines)-1])
	if err != nil {
		return fmt.Errorf("gateway rollups order: %w\n%s", err, out)
	}
	return nil
}

// vacuumAnalyze runs VACUUM ANALYZE on usage_logs and the rollup tables.
func vacuumAnalyze(ctx context.Context, conn *pgx.Conn) error {
	for _, t := range append([]string{"usage_logs"}, rollupTables...) {
		if _, err := sq(ctx, conn, "VACUUM ANALYZE "+t); err != nil {
			return err
		}
	}
	return nil
}

// buildRollups fills the emptied rollup tables in bulk from usage_logs, one
// month partition at a time (the hourly tables), then the daily tables from
// the hourly ones: a month's aggregate and its sort spill at most a month's
// groups to temporary files, where one statement over 100 M rows spilled
// more than a small machine's free disk. A month's hours and days belong to
// that month only, so the per-month inserts never meet. With tenant set,
// only that tenant's rows are read.
func (a *analytics) buildRollups(ctx context.Context, conn *pgx.Conn, tenant string) error {
	parts, err := sq(ctx, conn, `SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'usage_logs'::regclass ORDER BY 1`)
	if err != nil {
		return err
	}
	for _, p := range parts {
		from := p[0]
		if tenant != "" {
			from = fmt.Sprintf("(SELECT * FROM %s WHERE tenant_id = '%s') u", p[0], tenant)
		}
		if _, err := sq(ctx, conn, a.rollupHourlySQL(from)); err != nil {
			return fmt.Errorf("rollups from %s: %w", p[0], err)
		}
	}
	_, err = sq(ctx, conn, a.rollupDailySQL())
	return err
}

// rollupHourlySQL builds the hourly rollup tables in bulk from the rows of
// from (a month partition, or a subquery over one), as the ingester's
// increments would (analytics.rollupCTEs: the same integer measures, the
// same latency buckets).
func (a *analytics) rollupHourlySQL(from string) string {
	B := a.bounds
	neg := make([]string, len(B))
	for i, b := range B {
		neg[len(B)-1-i] = "-" + b
	}
	lb := fmt.Sprintf("(%d - width_bucket(-latency_ms, '{%s}'::float8[]))", len(B), strings.Join(neg, ","))
	rowM := []string{"count(*)", "count(*) FILTER (WHERE status_code >= 400 OR outcome = 'error')", "count(*) FILTER (WHERE total_tokens IS NULL)",
		"COALESCE(sum(prompt_tokens), 0)", "COALESCE(sum(completion_tokens), 0)", "COALESCE(sum(total_tokens), 0)",
		"COALESCE(sum(COALESCE(cost_usd_e10, round(cost_usd * 1e10)::bigint)), 0)", "sum(round(latency_ms * 1000)::bigint)"}
	for i := range len(B) + 1 {
		rowM = append(rowM, fmt.Sprintf("count(*) FILTER (WHERE lb = %d)", i))
	}
	for i := range rowM {
		rowM[i] += " AS " + measureCols[i]
	}
	var b strings.Builder
	b.WriteString(rollupSessionSQL)
	for _, d := range rollupDims {
		fmt.Fprintf(&b, `INSERT INTO usage_rollups_%[1]s_hourly (tenant_id, env, bucket, %[2]s, %[3]s)
SELECT tenant_id, env, date_trunc('hour', created_at, 'UTC'), %[4]s, %[5]s FROM (SELECT *, %[6]s AS lb FROM %[7]s) x
GROUP BY 1, 2, 3, %[4]s ORDER BY 3;
`, d.name, d.keys, strings.Join(measureCols, ", "), d.expr, strings.Join(rowM, ", "), lb, from)
	}
	return b.String()
}

// rollupDailySQL builds the daily rollup tables from the hourly ones.
func (a *analytics) rollupDailySQL() string {
	sums := make([]string, len(measureCols))
	for i, c := range measureCols {
		sums[i] = "sum(" + c + ")::bigint"
	}
	var b strings.Builder
	b.WriteString(rollupSessionSQL)
	for _, d := range rollupDims {
		fmt.Fprintf(&b, `INSERT INTO usage_rollups_%[1]s_daily (tenant_id, env, bucket, %[2]s, %[3]s)
SELECT tenant_id, env, date_trunc('day', bucket, 'UTC'), %[2]s, %[4]s FROM usage_rollups_%[1]s_hourly GROUP BY 1, 2, 3, %[2]s ORDER BY 3;
`, d.name, d.keys, strings.Join(measureCols, ", "), strings.Join(sums, ", "))
	}
	return b.String()
}

const rollupSessionSQL = "SET TimeZone = 'UTC'; SET work_mem = '1GB'; SET synchronous_commit = off;\n"

// rollupDims are the rollup dimensions: table name, key columns, and their
// values from a usage_logs row.
var rollupDims = []struct{ name, keys, expr string }{{"model", "provider, model", "provider, model"},
	{"key", "key_id", "COALESCE(key_id, '00000000-0000-0000-0000-000000000000')"}, {"status", "status_code", "status_code"}}

// describe reads the facts of the generated database (counts, sizes, the
// big tenant and its first key).
func (a *analytics) describe(ctx context.Context) (generated, error) {
	var g generated
	conn, err := a.session(ctx)
	if err != nil {
		return g, err
	}
	defer conn.Close(ctx)
	meta, err := sq(ctx, conn, `SELECT big_tenant, to_char(t_start, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(t_end, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), days FROM bench_meta`)
	if err != nil || len(meta) == 0 {
		return g, fmt.Errorf("%s has no bench_meta (generated by an older bench?): %v", a.cfg.db, err)
	}
	a.bigTen, g.tStart, g.tEnd = meta[0][0], meta[0][1], meta[0][2]
	if a.cfg.days, err = strconv.Atoi(meta[0][3]); err != nil {
		return g, err
	}
	if a.now, err = time.Parse(time.RFC3339, g.tEnd); err != nil {
		return g, err
	}
	if _, err := sq(ctx, conn, "SET max_parallel_workers_per_gather = 2"); err != nil {
		return g, err
	}
	row, err := sq(ctx, conn, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE tenant_id = '%[1]s'),
	count(*) FILTER (WHERE tenant_id = '%[1]s' AND env = 'production') FROM usage_logs`, a.bigTen))
	if err != nil {
		return g, err
	}
	g.nLogs, g.nBig, g.nBigProd = row[0][0], row[0][1], row[0][2]
	for _, r := range []struct {
		table   string
		n, nBig *string
	}{{"usage_rollups_key_hourly", &g.nRoll, &g.nRollBig}, {"usage_rollups_key_daily", &g.nDay, &g.nDayBig}} {
		row, err := sq(ctx, conn, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE tenant_id = '%s' AND env = 'production'), sum(requests) FROM %s`, a.bigTen, r.table))
		if err != nil {
			return g, err
		}
		*r.n, *r.nBig = row[0][0], row[0][1]
		switch row[0][2] {
		case g.nLogs:
		case g.nBig:
			g.bigOnlyRollups = true
		default:
			return g, fmt.Errorf("%s counts %s requests for %s rows (%s of the big tenant)", r.table, row[0][2], g.nLogs, g.nBig)
		}
	}
	row, err = sq(ctx, conn, `SELECT pg_size_pretty(sum(pg_table_size(relid))), pg_size_pretty(sum(pg_indexes_size(relid))),
	pg_size_pretty(`+"(SELECT sum(pg_total_relation_size(t)) FROM unnest('{"+strings.Join(rollupTables, ",")+"}'::regclass[]) t)"+`),
	pg_size_pretty(pg_total_relation_size('usage_rollups_key_hourly')), count(*) FILTER (WHERE isleaf) FROM pg_partition_tree('usage_logs')`)
	if err != nil {
		return g, err
	}
	g.szLogs, g.szLogsIdx, g.szRoll, g.szDay, g.nParts = row[0][0], row[0][1], row[0][2], row[0][3], row[0][4]
	if a.key1, err = sq1(ctx, conn, fmt.Sprintf("SELECT md5('%s' || '-key-' || 0)::uuid", a.bigTen)); err != nil {
		return g, err
	}
	say("analytics", "  %s rows (%s of the big tenant in production), %s hourly key rollup rows (%s of the big tenant), %s daily (%s)",
		g.nLogs, g.nBigProd, g.nRoll, g.nRollBig, g.nDay, g.nDayBig)
	return g, nil
}

// genSQL inserts rows lo..hi. Rows are generated in created_at order (as
// the ingester writes them) over [start, start + 30 days); the random draws
// live in the inner subquery, which Postgres does not flatten (volatile
// target list), so each is drawn once. Tenant: big with BIG_SHARE, else one
// of NOISE; key: one of BIG_KEYS (the last 2 in env development) or of 3
// for noise tenants; model mix, status mix (1% blocked by policy, 1%
// flagged/redacted, 2% 429, 1% 5xx, 0.5% client closed), 30% streams
// (embeddings, model 4, never stream nor have completion tokens), lognormal
// latency (median 700 ms), token counts (NULL for errors and for 5% of
// streams), cost from list prices.
func (a *analytics) genSQL(start string, lo, hi int) string {
	c := a.cfg
	r := strings.NewReplacer("$BIG_TENANT", a.bigTen, "$BIG_SHARE", c.bigShare, "$NOISE", strconv.Itoa(c.noise),
		"$BIG_KEYS", strconv.Itoa(c.bigKeys), "$T_START", start, "$DAYS", strconv.Itoa(c.days), "$ROWS", strconv.Itoa(c.rows),
		"$LO", strconv.Itoa(lo), "$HI", strconv.Itoa(hi))
	return r.Replace(genTemplate)
}

const genTemplate = `SET synchronous_commit = off; SET TimeZone = 'UTC';
INSERT INTO usage_logs (request_id, created_at, tenant_id, env, key_id, key_name, provider, model, path, status_code, stream,
	latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd_e10, outcome, error, violation_ids, ingested_at)
SELECT md5('req' || g), ts, tenant, env, md5(tenant::text || '-key-' || k)::uuid, 'key-' || k,
	(ARRAY['openai','openai','openai','openai','anthropic','anthropic','google','azure'])[mi],
	(ARRAY['gpt-4o-mini','gpt-4o','gpt-4.1-mini','text-embedding-3-small','claude-3-5-sonnet-20241022','claude-3-5-haiku-20241022','gemini-1.5-flash','gpt-4o'])[mi],
	(ARRAY['/chat/completions','/chat/completions','/chat/completions','/embeddings','/messages','/messages','/models/gemini-1.5-flash:generateContent','/chat/completions'])[mi],
	status, stream, lat, CASE WHEN status IN (200, 499) THEN CASE WHEN stream THEN lat * (0.1 + 0.2 * r_tt) ELSE lat END END,
	pt, ct, pt + ct, ca,
	round(((pt - ca) * (ARRAY[0.15,2.5,0.4,0.02,3,0.8,0.075,2.5])[mi] + ca * (ARRAY[0.15,2.5,0.4,0.02,3,0.8,0.075,2.5])[mi] / 2
		+ ct * (ARRAY[0.6,10,1.6,0,15,4,0.3,10])[mi]) * 1e4)::bigint,
	outcome, CASE status WHEN 400 THEN 'request blocked by policy' WHEN 429 THEN 'upstream rate limit exceeded' ELSE
		CASE WHEN status >= 500 THEN 'upstream error' ELSE '' END END,
	CASE WHEN outcome IN ('blocked', 'flagged', 'redacted') THEN ARRAY[gen_random_uuid()::text] ELSE '{}' END,
	ts + interval '1 second'
FROM (
	SELECT *, CASE WHEN status = 200 AND NOT (stream AND r_u < 0.05) THEN 20 + floor(-ln(1 - r_p) * 900)::bigint END AS pt,
		CASE WHEN status = 200 AND NOT (stream AND r_u < 0.05) THEN CASE WHEN mi = 4 THEN 0 ELSE 5 + floor(-ln(1 - r_c) * 250)::bigint END END AS ct,
		CASE WHEN status = 200 AND NOT (stream AND r_u < 0.05) THEN CASE WHEN r_ca < 0.25 THEN (20 + floor(-ln(1 - r_p) * 900)::bigint) / 2 ELSE 0 END END AS ca,
		CASE WHEN status = 400 THEN 0.2 + r_tt ELSE round((exp(ln(700) + 0.8 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2))
			/ CASE WHEN status = 429 THEN 10 ELSE 1 END)::numeric, 3)::float8 END AS lat
	FROM (
		SELECT *, stream0 AND NOT (r_m >= 0.60 AND r_m < 0.65) AS stream, CASE WHEN big THEN '$BIG_TENANT'::uuid ELSE md5('trueport-bench-noise-' || floor((r_t - $BIG_SHARE) / (1 - $BIG_SHARE) * $NOISE))::uuid END AS tenant,
			CASE WHEN big AND k >= $BIG_KEYS - 2 THEN 'development' ELSE 'production' END AS env,
			CASE WHEN r_m < 0.35 THEN 1 WHEN r_m < 0.50 THEN 2 WHEN r_m < 0.60 THEN 3 WHEN r_m < 0.65 THEN 4
				WHEN r_m < 0.77 THEN 5 WHEN r_m < 0.85 THEN 6 WHEN r_m < 0.93 THEN 7 ELSE 8 END AS mi,
			CASE WHEN r_s < 0.01 THEN 400 WHEN r_s < 0.04 AND r_s >= 0.02 THEN 429
				WHEN r_s < 0.05 AND r_s >= 0.04 THEN (ARRAY[500,502,503,504])[1 + floor(r_o * 4)::int] WHEN r_s < 0.055 AND r_s >= 0.05 THEN 499 ELSE 200 END AS status,
			CASE WHEN r_s < 0.01 THEN 'blocked' WHEN r_s < 0.02 THEN CASE WHEN r_o < 0.5 THEN 'flagged' ELSE 'redacted' END
				WHEN r_s < 0.05 THEN 'error' WHEN r_s < 0.055 THEN 'client_closed' ELSE 'ok' END AS outcome
		FROM (
			SELECT g, r_t < $BIG_SHARE AS big, floor(r_k * CASE WHEN r_t < $BIG_SHARE THEN $BIG_KEYS ELSE 3 END)::int AS k, ts,
				r_t, r_m, r_s, r_o, r_p, r_c, r_ca, r_u, r_tt, u1, u2, r_str < 0.3 AS stream0
			FROM (
				SELECT g, timestamptz '$T_START' + (g - 1) * (interval '$DAYS days' / $ROWS) AS ts,
					random() r_t, random() r_k, random() r_m, random() r_s, random() r_o, random() r_p, random() r_c,
					random() r_ca, random() r_u, random() r_tt, random() u1, random() u2, random() r_str
				FROM generate_series($LO::bigint, $HI::bigint) g
			) draws
		) a
	) b
) c;`

// sqlFingerprint hashes the SQL-bearing lines of the handlers whose SQL the
// timed scenarios copy (internal/analytics/stats.go, logs.go and where.go,
// whose scoped() writes the tenant, environment and time-range clause);
// expected is the hash when it was copied.
const sqlFingerprint = "9aabf0b3"

var sqlLineRE = regexp.MustCompile(`SELECT|FROM|WHERE|GROUP BY|ORDER BY|LIMIT|UNION|bucket|[fw]\.add\(|[tT]otalCap =|Truncate|firstDay|lastDay`)

func handlerFingerprint() string {
	h := sha256.New()
	for _, f := range []string{"internal/analytics/stats.go", "internal/analytics/logs.go", "internal/analytics/where.go"} {
		b, err := os.ReadFile(filepath.Join(gatewayDir, f))
		if err != nil {
			return "missing " + f
		}
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if sqlLineRE.MatchString(l) {
				h.Write([]byte(strings.TrimSuffix(l, "\n") + "\n"))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:8]
}
