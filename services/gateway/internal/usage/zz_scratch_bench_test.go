package usage

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/pgdb"
)

func BenchmarkScratchParts(b *testing.B) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, dbtest.NewURL(b, "scratch"), log)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
		b.Fatal(err)
	}
	fleet := newBenchFleet(rand.New(rand.NewPCG(1, 2)))
	n := 50000
	payloads, _, _ := fleet.events(n, time.Now().UTC().Add(-time.Hour))
	evs := make([]Event, n)
	for i, p := range payloads {
		_ = json.Unmarshal(p, &evs[i])
	}
	in := NewIngester(pool, nil, "", noTouch{}, log)
	var tIns, tAll time.Duration
	var nroll int
	for i := 0; i < n/2; i += 1000 {
		batch := evs[i : i+1000]
		ptrs := make([]*Event, len(batch))
		for j := range batch {
			ptrs[j] = &batch[j]
		}
		nroll += len(aggregate(ptrs))
		t0 := time.Now()
		_ = in.insert(ctx, batch)
		tAll += time.Since(t0)
	}
	// logs only (no rollups): raw insertSQL via a copy of the columns path: use ON CONFLICT to re-insert nothing? use second half
	for i := n / 2; i < n; i += 1000 {
		batch := evs[i : i+1000]
		t0 := time.Now()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			ptrs := make([]*Event, len(batch))
			for j := range batch {
				ptrs[j] = &batch[j]
			}
			bb := &pgx.Batch{}
			for _, r := range aggregate(ptrs) {
				bb.Queue(rollupSQL, r.tenant, r.env, r.bucket, r.provider, r.model, r.keyID, r.status, r.requests, r.errors, r.unknown,
					r.prompt, r.completion, r.total, r.cost, r.latencySum, r.hist)
			}
			return tx.SendBatch(ctx, bb).Close()
		})
		_ = err
		_ = batch
		tIns += time.Since(t0)
	}
	b.Logf("rollups only: %.1f ms/batch", float64(tIns.Microseconds())/1000/25)
	b.Logf("full insert: %.1f ms/batch; rollup rows per batch: %d", float64(tAll.Microseconds())/1000/25, nroll/25)
}
