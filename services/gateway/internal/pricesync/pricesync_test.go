package pricesync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/gateway/internal/pricing"
)

// fakeConfig answers GetGatewayConfig with the overrides it holds.
type fakeConfig struct {
	calls     atomic.Int32
	overrides atomic.Value // string
	fail      atomic.Bool
}

func (f *fakeConfig) GetGatewayConfig(context.Context, *platformv1.GetGatewayConfigRequest, ...grpc.CallOption) (*platformv1.GetGatewayConfigResponse, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return nil, errors.New("platform down")
	}
	s, _ := f.overrides.Load().(string)
	return &platformv1.GetGatewayConfigResponse{PricingOverridesJson: s}, nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func costOf(t *testing.T, live *pricing.Live, model string) float64 {
	t.Helper()
	c, ok := live.Cost(model, 1_000_000, 0, 0)
	if !ok {
		t.Fatalf("no price for %s", model)
	}
	return c.Float64()
}

func TestRefreshAppliesOverridesAndKeepsThemOnFailure(t *testing.T) {
	table, err := LoadTable("")
	if err != nil {
		t.Fatal(err)
	}
	live := pricing.NewLive(table)
	cfg := &fakeConfig{}
	cfg.overrides.Store(`{"gpt-4o":{"input_per_1m":7,"output_per_1m":9}}`)
	r := New(live, cfg, quiet())
	r.Refresh(context.Background())
	if got := costOf(t, live, "gpt-4o"); got != 7 {
		t.Fatalf("cost after refresh = %v, want 7", got)
	}
	cfg.fail.Store(true)
	r.Refresh(context.Background())
	if got := costOf(t, live, "gpt-4o"); got != 7 {
		t.Fatalf("cost after a failed refresh = %v, want the overrides kept (7)", got)
	}
	cfg.fail.Store(false)
	cfg.overrides.Store(`not json`)
	r.Refresh(context.Background())
	if got := costOf(t, live, "gpt-4o"); got != 7 {
		t.Fatalf("cost after bad overrides = %v, want 7", got)
	}
}

func TestRunRefreshesOnTriggerAndTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		table, _ := LoadTable("")
		cfg := &fakeConfig{}
		r := New(pricing.NewLive(table), cfg, quiet())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() { defer close(done); r.Run(ctx, time.Minute) }()

		synctest.Wait()
		if n := cfg.calls.Load(); n != 0 {
			t.Fatalf("%d fetches before any trigger or tick", n)
		}
		r.Trigger()
		synctest.Wait()
		if n := cfg.calls.Load(); n != 1 {
			t.Fatalf("%d fetches after a trigger, want 1", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := cfg.calls.Load(); n != 2 {
			t.Fatalf("%d fetches after one interval, want 2", n)
		}
		cancel()
		<-done
	})
}

func TestTriggerNeverBlocks(t *testing.T) {
	r := New(nil, &fakeConfig{}, quiet())
	for range 3 {
		r.Trigger() // nothing runs: the first is pending, the rest coalesce
	}
	if len(r.trigger) != 1 {
		t.Fatalf("%d triggers pending, want 1", len(r.trigger))
	}
}

func TestLoadTableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(`{"as_of":"2026-01-01","models":{"my-model":{"input":1,"output":2}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	table, err := LoadTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := table.Lookup("my-model"); !ok {
		t.Fatal("PRICING_FILE model missing")
	}
	if _, ok := table.Lookup("gpt-4o"); !ok {
		t.Fatal("shipped model missing")
	}
	if _, err := LoadTable(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing PRICING_FILE loaded")
	}
}
