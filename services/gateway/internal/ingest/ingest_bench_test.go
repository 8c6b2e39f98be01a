package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/money"
	"trueportai/services/internal/pgdb"
)

// BenchmarkIngest measures one Ingester moving usage events from JetStream to
// Postgres: every run gets a fresh database and a fresh stream, N realistic
// events are published with async publishes (as the gateway's Publisher
// does: JSON, Nats-Msg-Id = request id), and the clock stops when the
// durable consumer has nothing pending or unacknowledged and usage_logs
// holds exactly N rows (rollups and violations are checked too).
//
// Modes:
//
//	prefilled   the stream holds all N events before the ingester starts;
//	            measures the ingester alone (drain rate)
//	concurrent  the ingester runs while the events are published as fast
//	            as possible from the same process; the clock starts with
//	            the first publish
//
// Run it with -benchtime=1x (one drain per sub-benchmark is the measurement):
//
//	go test ./internal/ingest -run '^$' -bench BenchmarkIngest -benchtime=1x
//
// Environment (defaults in brackets):
//
//	INGEST_BENCH_EVENTS   events per run [200000]
//	INGEST_BENCH_BATCHES  ingester batch sizes (Fetch size) to try ["1000"]
//	INGEST_BENCH_MODES    modes ["prefilled concurrent"]
//	INGEST_BENCH_INGESTERS  ingesters pulling from the one durable consumer
//	                      concurrently, each on its own NATS connection [1]
//	INGEST_BENCH_DATABASE_URL  an existing, migrated database to ingest into
//	                      instead of a fresh one (e.g. one holding millions of
//	                      rows); the benchmark's rows are deleted afterwards and the tables vacuumed
//	INGEST_BENCH_VACUUM   "0": no vacuum after the deletes (the measurement before
//	                      the vacuum was added) [1]
//	INGEST_BENCH_PG_PARAMS  session parameters of the pool, "name=value ..."
//	                      ["none": the ingester has its own pool without the
//	                      analytics pool's plan_cache_mode]
//	INGEST_BENCH_ENCODING  "binary" (usage.Encode, what the publisher
//	                      sends) or "json" (older publishers) [binary]
//	INGEST_BENCH_MSG_EVENTS  events per message, '\n'-separated as the
//	                      publisher batches them (up to 256 under load) [1]
//
// Reported metrics: events/s (ingestion rate, the target is ≥ 20000),
// publish_events/s (the publishing side alone), ingester_cpu_us/event (CPU
// of this process per event: the ingester, plus the publisher in concurrent
// mode), machine_cpu_us/event (busy CPU of the whole machine per event:
// ingester, NATS, Postgres, ...).
func BenchmarkIngest(b *testing.B) {
	n := benchEnvInt(b, "INGEST_BENCH_EVENTS", 200_000)
	ingesters := benchEnvInt(b, "INGEST_BENCH_INGESTERS", 1)
	var batches []int
	for _, s := range strings.Fields(benchEnv("INGEST_BENCH_BATCHES", "1000")) {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 || v > 20000 {
			b.Fatalf("INGEST_BENCH_BATCHES: bad batch size %q (1..20000: the consumer's MaxAckPending)", s)
		}
		batches = append(batches, v)
	}
	// One event set for every run: generating it is not part of any timing.
	fleet := newBenchFleet(rand.New(rand.NewPCG(1, 2)))
	encoding := benchEnv("INGEST_BENCH_ENCODING", "binary")
	if encoding != "binary" && encoding != "json" {
		b.Fatalf("INGEST_BENCH_ENCODING: %q is neither binary nor json", encoding)
	}
	payloads, ids, wantViolations := fleet.events(n, time.Now().UTC().Add(-time.Hour), encoding)
	withViolations := countWithViolations(payloads)
	avg := avgLen(payloads)
	msgs, msgIDs := batchMessages(payloads, ids, benchEnvInt(b, "INGEST_BENCH_MSG_EVENTS", 1))
	var tenants []string
	for _, t := range fleet.tenants {
		tenants = append(tenants, t.id)
	}
	b.Logf("events: %d (%s), %.0f bytes on average, %d a message, %d violations (%.1f%% of events have some)",
		n, encoding, avg, n/len(msgs), wantViolations, 100*float64(withViolations)/float64(n))

	for _, mode := range strings.Fields(benchEnv("INGEST_BENCH_MODES", "prefilled concurrent")) {
		if mode != "prefilled" && mode != "concurrent" {
			b.Fatalf("INGEST_BENCH_MODES: unknown mode %q", mode)
		}
		for _, batch := range batches {
			name := fmt.Sprintf("%s/batch=%d", mode, batch)
			if ingesters > 1 {
				name += fmt.Sprintf("/ingesters=%d", ingesters)
			}
			b.Run(name, func(b *testing.B) {
				var sum ingestResult
				for range b.N {
					r := runIngest(b, mode, batch, ingesters, tenants, msgs, msgIDs, n, wantViolations)
					sum.drain += r.drain
					sum.publish += r.publish
					sum.procCPU += r.procCPU
					sum.boxCPU += r.boxCPU
					sum.pgCPU += r.pgCPU
					sum.natsCPU += r.natsCPU
				}
				events := float64(n) * float64(b.N)
				b.ReportMetric(events/sum.drain.Seconds(), "events/s")
				b.ReportMetric(events/sum.publish.Seconds(), "publish_events/s")
				b.ReportMetric(float64(sum.procCPU.Microseconds())/events, "ingester_cpu_us/event")
				b.ReportMetric(float64(sum.pgCPU.Microseconds())/events, "postgres_cpu_us/event")
				b.ReportMetric(float64(sum.natsCPU.Microseconds())/events, "nats_cpu_us/event")
				b.ReportMetric(float64(sum.boxCPU.Microseconds())/events, "machine_cpu_us/event")
			})
		}
	}
}

type ingestResult struct {
	drain, publish, procCPU, boxCPU, pgCPU, natsCPU time.Duration
}

// runIngest sets up a database and a stream, runs one measurement and checks
// the result; setup and checks are outside the timer.
// batchMessages joins k events a message, with the publisher's message id
// (the first request id, "+", the number of further events).
func batchMessages(payloads [][]byte, ids []string, k int) ([][]byte, []string) {
	if k <= 1 {
		return payloads, ids
	}
	var msgs [][]byte
	var msgIDs []string
	for i := 0; i < len(payloads); i += k {
		j := min(i+k, len(payloads))
		msgs = append(msgs, bytes.Join(payloads[i:j], []byte{'\n'}))
		id := ids[i]
		if j-i > 1 {
			id += "+" + strconv.Itoa(j-i-1)
		}
		msgIDs = append(msgIDs, id)
	}
	return msgs, msgIDs
}

func runIngest(b *testing.B, mode string, batch, ingesters int, tenants []string, payloads [][]byte, ids []string, events, wantViolations int) ingestResult {
	b.StopTimer()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dsn := os.Getenv("INGEST_BENCH_DATABASE_URL")
	fresh := dsn == ""
	if fresh {
		dsn = dbtest.NewURL(b, "ingestbench")
	}
	var opts []pgdb.Option
	if ps := benchEnv("INGEST_BENCH_PG_PARAMS", "none"); ps != "none" {
		for _, kv := range strings.Fields(ps) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				b.Fatalf("INGEST_BENCH_PG_PARAMS: %q is not name=value", kv)
			}
			opts = append(opts, pgdb.WithRuntimeParam(k, v))
		}
	}
	pool, err := pgdb.Open(ctx, dsn, log, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if fresh {
		if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
			b.Fatal(err)
		}
	}
	// Every check counts the benchmark's tenants only (the database may hold
	// other rows), and an existing database gets its old state back.
	mine := func(q string) int { return benchCount(b, pool, q+` WHERE tenant_id = ANY($1::uuid[])`, tenants) }
	// The cleanup deletes the run's rows and vacuums what held them: the
	// next run ingests the same tenants' events into the same hours, and
	// without the vacuum it would step over the dead index entries and
	// rollup versions this run left, which a production database never
	// holds (retention drops whole months; nothing deletes the current
	// one's rows). The vacuum skips the pages its visibility map marks
	// all-visible, so the old months cost little.
	cleanup := func() {
		tables := append([]string{"usage_logs", "violations"}, analytics.RollupTables()...)
		for _, t := range tables {
			if _, err := pool.Exec(context.Background(), `DELETE FROM `+t+` WHERE tenant_id = ANY($1::uuid[])`, tenants); err != nil {
				b.Fatal(err)
			}
		}
		if benchEnv("INGEST_BENCH_VACUUM", "1") == "0" {
			return
		}
		start := time.Now()
		if _, err := pool.Exec(context.Background(), `VACUUM `+strings.Join(tables, ", ")); err != nil {
			b.Fatal(err)
		}
		b.Logf("cleanup: the run's rows deleted, the tables vacuumed in %.1f s", time.Since(start).Seconds())
	}
	if !fresh {
		cleanup() // an interrupted earlier run
		defer cleanup()
	}
	nc, err := nats.Connect(natsURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	// The publishing side mirrors usage.Publisher: async, bounded pending acks.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 10)
	streams := usage.NewStreams("BENCH_INGEST_"+suffix, "bench.ingest."+suffix, 1<<30, 16<<20, 1)
	stream, subject := streams.Name, streams.Subject
	if err := usage.EnsureStreams(ctx, js, streams); err != nil {
		b.Fatal(err)
	}
	defer usage.DeleteStreams(context.Background(), js, streams)

	// Each ingester has its own connection and JetStream context (in the
	// gateway the publisher and the ingester do not share one either).
	var ins []*Ingester
	var ijs jetstream.JetStream
	for range ingesters {
		inc, err := nats.Connect(natsURL())
		if err != nil {
			b.Fatal(err)
		}
		defer inc.Close()
		if ijs, err = jetstream.New(inc); err != nil {
			b.Fatal(err)
		}
		in := NewIngester(analytics.New(pool), ijs, stream, noTouch{}, log)
		in.batch = batch
		ins = append(ins, in)
	}
	runCtx, stop := context.WithCancel(ctx)
	ingDone := make(chan struct{}, len(ins))
	startIngester := func() {
		for _, in := range ins {
			go func() { defer func() { ingDone <- struct{}{} }(); _ = in.Run(runCtx) }()
		}
	}
	started := false
	defer func() {
		stop()
		if started {
			for range ins {
				<-ingDone
			}
		}
	}()

	publish := func() time.Duration {
		t0 := time.Now()
		for i, p := range payloads {
			msg := &nats.Msg{Subject: subject, Data: p, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, ids[i])
			if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second)); err != nil {
				b.Errorf("publish %d: %v", i, err)
				return 0
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(60 * time.Second):
			b.Errorf("publish acks still pending after 60 s: %d", js.PublishAsyncPending())
		}
		return time.Since(t0)
	}

	var res ingestResult
	var t0 time.Time
	var p0, m0, n0 time.Duration
	var pg0 map[int]time.Duration
	var w0 pgWrites
	pubDone := make(chan time.Duration, 1)
	switch mode {
	case "prefilled":
		res.publish = publish()
		if si, err := js.Stream(ctx, stream); err != nil || si.CachedInfo().State.Msgs != uint64(len(payloads)) {
			b.Fatalf("stream not filled: %v %+v", err, si)
		}
		pubDone <- res.publish
		w0 = readWrites(b, pool)
		b.StartTimer()
		t0, p0, m0, n0, pg0 = time.Now(), procCPU(), machineBusy(), natsCPU(), backendCPU(b, pool)
		startIngester()
		started = true
	case "concurrent":
		w0 = readWrites(b, pool) // before the ingesters take connections
		startIngester()
		started = true
		waitConsumer(b, ijs, stream)
		b.StartTimer()
		t0, p0, m0, n0, pg0 = time.Now(), procCPU(), machineBusy(), natsCPU(), backendCPU(b, pool)
		go func() { pubDone <- publish() }()
	}

	// Drained: the publisher is done, the consumer has nothing pending or
	// unacknowledged (the ingester acks after its commit), and the rows are there.
	cons := waitConsumer(b, ijs, stream)
	published := false
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if !published {
			select {
			case d := <-pubDone:
				res.publish, published = d, true
			default:
			}
		}
		if published {
			ci, err := cons.Info(ctx)
			if err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream >= uint64(len(payloads)) {
				if rows := mine(`SELECT count(*) FROM usage_logs`); rows == events {
					break
				} else if rows > events {
					b.Fatalf("usage_logs has %d rows, want %d", rows, events)
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the ingester did not drain the stream within 10 minutes")
		}
		time.Sleep(25 * time.Millisecond)
	}
	res.drain = time.Since(t0)
	res.procCPU, res.boxCPU, res.natsCPU = procCPU()-p0, machineBusy()-m0, natsCPU()-n0
	for pid, c := range backendCPU(b, pool) {
		res.pgCPU += c - pg0[pid]
	}
	b.StopTimer()
	w := readWrites(b, pool).minus(w0)

	if got := mine(`SELECT COALESCE(sum(requests), 0) FROM usage_rollups_model_hourly`); got != events {
		b.Fatalf("rollups count %d requests, want %d", got, events)
	}
	if got := mine(`SELECT count(*) FROM violations`); got != wantViolations {
		b.Fatalf("violations: %d rows, want %d", got, wantViolations)
	}
	rollups := mine(`SELECT count(*) FROM usage_rollups_model_hourly`)
	b.Logf("%s batch=%d ingesters=%d: %d events in %.2f s = %.0f events/s (publish %.2f s = %.0f/s); %d rollup rows; CPU µs/event: this process %.1f, Postgres backends %.1f, nats-server %.1f, whole machine %.1f (load average %s)",
		mode, batch, ingesters, events, res.drain.Seconds(), float64(events)/res.drain.Seconds(), res.publish.Seconds(),
		float64(events)/res.publish.Seconds(), rollups, float64(res.procCPU.Microseconds())/float64(events),
		float64(res.pgCPU.Microseconds())/float64(events), float64(res.natsCPU.Microseconds())/float64(events),
		float64(res.boxCPU.Microseconds())/float64(events), loadAvg())
	b.Logf("rollup tables: %d row updates (%.2f an event), %.1f%% of them HOT (no index entry); WAL (the whole cluster's): %.0f bytes, %.2f records, %.3f full-page images an event",
		w.rollupUpd, float64(w.rollupUpd)/float64(events), 100*float64(w.rollupHot)/math.Max(1, float64(w.rollupUpd)),
		float64(w.walBytes)/float64(events), float64(w.walRecords)/float64(events), float64(w.walFPI)/float64(events))
	return res
}

// pgWrites are cumulative write counters: the rollup tables' row updates
// and HOT updates (pg_stat_user_tables), and the cluster's WAL records,
// full-page images and bytes (pg_stat_wal: every database's writes, this
// benchmark's and any other's).
type pgWrites struct{ rollupUpd, rollupHot, walRecords, walFPI, walBytes int64 }

func (w pgWrites) minus(o pgWrites) pgWrites {
	return pgWrites{w.rollupUpd - o.rollupUpd, w.rollupHot - o.rollupHot, w.walRecords - o.walRecords, w.walFPI - o.walFPI, w.walBytes - o.walBytes}
}

// readWrites reads the counters once the backends that wrote them have
// reported. A busy backend holds its last second of counts until it has
// been idle for 10 s (Postgres 15), but reports everything as it exits: so
// the pool's connections are closed first, and the read waits (up to 5 s)
// until no other backend of the database is left.
func readWrites(b *testing.B, pool *pgxpool.Pool) pgWrites {
	pool.Reset()
	for deadline := time.Now().Add(5 * time.Second); ; {
		var others int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&others); err != nil {
			b.Fatal(err)
		}
		if others == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var w pgWrites
	if err := pool.QueryRow(context.Background(), `SELECT
			(SELECT COALESCE(sum(n_tup_upd), 0)::int8 FROM pg_stat_user_tables WHERE relname = ANY($1)),
			(SELECT COALESCE(sum(n_tup_hot_upd), 0)::int8 FROM pg_stat_user_tables WHERE relname = ANY($1)),
			wal_records, wal_fpi, wal_bytes::int8 FROM pg_stat_wal`, analytics.RollupTables()).
		Scan(&w.rollupUpd, &w.rollupHot, &w.walRecords, &w.walFPI, &w.walBytes); err != nil {
		b.Fatal(err)
	}
	return w
}

func waitConsumer(b *testing.B, js jetstream.JetStream, stream string) jetstream.Consumer {
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := js.Consumer(context.Background(), stream, "usage-ingester")
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatalf("the ingester's consumer did not appear: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func benchCount(b *testing.B, pool *pgxpool.Pool, q string, args ...any) int {
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// procCPU is the user+system CPU time of this process.
func procCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the CPU time of every Postgres backend connected to the
// pool's database (this benchmark's alone: the database is fresh), by pid.
func backendCPU(b *testing.B, pool *pgxpool.Pool) map[int]time.Duration {
	rows, err := pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		out[pid] = pidCPU(pid)
	}
	return out
}

// natsCPU is the CPU time of the local nats-server process (shared with
// whatever else uses it), 0 when not found.
func natsCPU() time.Duration {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile("/proc/" + d.Name() + "/comm"); strings.TrimSpace(string(comm)) == "nats-server" {
			return pidCPU(pid)
		}
	}
	return 0
}

// pidCPU is utime+stime of a process from /proc/<pid>/stat (0 if gone).
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state is f[0]; utime, stime are fields 14, 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// machineBusy is the busy (non-idle, non-iowait) CPU time of the whole
// machine from /proc/stat; 0 where it is unavailable.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i := 1; i < len(f) && i <= 8; i++ {
		if i == 4 || i == 5 {
			continue
		}
		v, _ := strconv.ParseInt(f[i], 10, 64)
		busy += v
	}
	return time.Duration(busy) * 10 * time.Millisecond // USER_HZ = 100
}

func benchEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func benchEnvInt(b *testing.B, name string, def int) int {
	v, err := strconv.Atoi(benchEnv(name, strconv.Itoa(def)))
	if err != nil || v <= 0 {
		b.Fatalf("%s must be a positive integer", name)
	}
	return v
}

func avgLen(p [][]byte) float64 {
	var s int
	for _, x := range p {
		s += len(x)
	}
	return float64(s) / float64(len(p))
}

func countWithViolations(p [][]byte) int {
	n := 0
	for _, x := range p {
		if ev, err := usage.Decode(x); err == nil && len(ev.Violations) > 0 {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------- events

type benchModel struct {
	provider, model, path string
	inPerM, outPerM       float64 // USD per million tokens
	weight                float64
}

var benchModels = []benchModel{
	{"openai", "gpt-4o-mini", "/chat/completions", 0.15, 0.60, 35},
	{"openai", "gpt-4o", "/chat/completions", 2.50, 10, 15},
	{"openai", "gpt-4.1-mini", "/chat/completions", 0.40, 1.60, 10},
	{"openai", "text-embedding-3-small", "/embeddings", 0.02, 0, 5},
	{"anthropic", "claude-3-5-sonnet-20241022", "/messages", 3, 15, 12},
	{"anthropic", "claude-3-5-haiku-20241022", "/messages", 0.80, 4, 8},
	{"google", "gemini-1.5-flash", "/models/gemini-1.5-flash:generateContent", 0.075, 0.30, 8},
	{"azure", "gpt-4o", "/chat/completions", 2.50, 10, 7},
}

type benchKey struct{ id, name, env string }

type benchTenant struct {
	id        string
	keys      []benchKey
	policies  []string // policy ids
	logBodies bool
}

// benchFleet is a deployment: one big tenant (40% of the traffic) and 49
// smaller ones, 1–6 keys each (mostly production), 3 tenants logging bodies.
type benchFleet struct {
	rng     *rand.Rand
	tenants []benchTenant
	mw      []float64 // cumulative model weights
}

func newBenchFleet(rng *rand.Rand) *benchFleet {
	f := &benchFleet{rng: rng}
	for i := range 50 {
		t := benchTenant{id: benchUUID(rng), logBodies: i == 7 || i == 19 || i == 33}
		for k := range 1 + rng.IntN(6) {
			env := "production"
			if k > 0 && rng.IntN(4) == 0 {
				env = "development"
			}
			t.keys = append(t.keys, benchKey{benchUUID(rng), fmt.Sprintf("key-%d-%d", i, k), env})
		}
		for range 1 + rng.IntN(4) {
			t.policies = append(t.policies, benchUUID(rng))
		}
		f.tenants = append(f.tenants, t)
	}
	var c float64
	for _, m := range benchModels {
		c += m.weight
		f.mw = append(f.mw, c)
	}
	return f
}

func benchUUID(rng *rand.Rand) string {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(rng.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}

// events returns n marshalled events spread over one hour from start, their
// request ids, and the number of violations they carry.
func (f *benchFleet) events(n int, start time.Time, encoding string) ([][]byte, []string, int) {
	rng := f.rng
	payloads, ids := make([][]byte, n), make([]string, n)
	violations := 0
	step := time.Hour / time.Duration(n)
	for i := range n {
		var t *benchTenant
		if rng.Float64() < 0.4 {
			t = &f.tenants[0]
		} else {
			t = &f.tenants[1+rng.IntN(len(f.tenants)-1)]
		}
		key := t.keys[rng.IntN(len(t.keys))]
		m := benchModels[0]
		x := rng.Float64() * f.mw[len(f.mw)-1]
		for j, c := range f.mw {
			if x < c {
				m = benchModels[j]
				break
			}
		}
		var rid [16]byte
		for j := range rid {
			rid[j] = byte(rng.Uint32())
		}
		ev := usage.Event{
			RequestID: fmt.Sprintf("%x", rid), CreatedAt: start.Add(time.Duration(i) * step), TenantID: t.id, Env: key.env,
			KeyID: key.id, KeyName: key.name, Provider: m.provider, Model: m.model, Path: m.path,
			StatusCode: 200, Stream: m.path != "/embeddings" && rng.IntN(10) < 3, Outcome: usage.OutcomeOK,
		}
		ev.LatencyMS = math.Round(math.Exp(math.Log(700)+0.8*rng.NormFloat64())*1000) / 1000
		r := rng.Float64()
		switch {
		case r < 0.01: // blocked by a policy before the upstream
			ev.StatusCode, ev.Outcome, ev.Error = 400, usage.OutcomeBlocked, "request blocked by policy"
			ev.LatencyMS = 0.2 + rng.Float64()
			ev.Violations = f.violations(t, "block")
		case r < 0.02: // redacted or flagged, forwarded
			ev.Outcome = usage.OutcomeFlagged
			action := "flag"
			if rng.IntN(2) == 0 {
				ev.Outcome, action = usage.OutcomeRedacted, "redact"
			}
			ev.Violations = f.violations(t, action)
		case r < 0.04:
			ev.StatusCode, ev.Outcome, ev.Error = 429, usage.OutcomeError, "upstream rate limit exceeded"
			ev.LatencyMS /= 10
		case r < 0.05:
			ev.StatusCode, ev.Outcome, ev.Error = []int{500, 502, 503, 504}[rng.IntN(4)], usage.OutcomeError, "upstream error"
		case r < 0.055:
			ev.StatusCode, ev.Outcome = 499, usage.OutcomeClientClosed
		}
		for _, v := range ev.Violations {
			ev.ViolationIDs = append(ev.ViolationIDs, v.ID)
		}
		violations += len(ev.Violations)
		if ev.StatusCode == 200 || ev.StatusCode == 499 {
			ttfb := ev.LatencyMS
			if ev.Stream {
				ttfb *= 0.1 + 0.2*rng.Float64()
			}
			ttfb = math.Round(ttfb*1000) / 1000
			ev.TTFBMS = &ttfb
		}
		if ev.StatusCode == 200 && !(ev.Stream && rng.IntN(20) == 0) { // a few streams report no usage
			pt := int64(20 + rng.ExpFloat64()*900)
			ct := int64(5 + rng.ExpFloat64()*250)
			if m.path == "/embeddings" {
				ct = 0
			}
			var ca int64
			if rng.IntN(4) == 0 {
				ca = pt / 2
			}
			tot := pt + ct
			cost := money.FromFloat((float64(pt-ca)*m.inPerM + float64(ca)*m.inPerM/2 + float64(ct)*m.outPerM) / 1e6)
			ev.PromptTokens, ev.CompletionTokens, ev.TotalTokens, ev.CachedTokens, ev.CostUSD = &pt, &ct, &tot, &ca, &cost
		}
		if t.logBodies {
			req := fmt.Sprintf(`{"model":%q,"messages":[{"role":"system","content":"You are a helpful assistant for the support team."},{"role":"user","content":"Summarise ticket #%d in two sentences, customer tone %s."}]}`,
				m.model, rng.IntN(1_000_000), []string{"neutral", "upset", "happy"}[rng.IntN(3)])
			ev.RequestBody = &req
			if ev.StatusCode == 200 {
				resp := fmt.Sprintf(`{"id":"chatcmpl-%x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"The customer reports an issue with invoice %d and asks for a refund. Support confirmed the charge and opened a follow-up."},"finish_reason":"stop"}]}`,
					rid[:6], rng.IntN(100000))
				ev.ResponseBody = &resp
			}
		}
		var b []byte
		var err error
		if encoding == "json" {
			b, err = json.Marshal(ev)
		} else {
			b, _, err = usage.Encode(&ev, 1<<20)
		}
		if err != nil {
			panic(err)
		}
		payloads[i], ids[i] = b, ev.RequestID
	}
	return payloads, ids, violations
}

func (f *benchFleet) violations(t *benchTenant, action string) []usage.Violation {
	rng := f.rng
	var out []usage.Violation
	for j := range 1 + rng.IntN(2) {
		k := rng.IntN(4)
		typ := []string{"pii", "secrets", "keyword", "prompt_injection"}[k]
		out = append(out, usage.Violation{
			ID: benchUUID(rng), PolicyID: t.policies[j%len(t.policies)], PolicyName: typ + " policy", Type: typ,
			Action: action, Severity: []string{"low", "medium", "high"}[rng.IntN(3)], Direction: "request",
			Matches: []usage.Match{{Kind: []string{"email", "aws_access_key", "keyword", "ignore_instructions"}[k],
				Snippet: []string{"j***@e***.com", "AKIA************", "m*****", "ignore all previous ***"}[k], Offset: rng.IntN(400)}},
		})
	}
	return out
}
