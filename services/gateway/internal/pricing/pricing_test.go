package pricing

import (
	"testing"

	"trueportai/services/internal/money"
)

func TestCost(t *testing.T) {
	tb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if tb.AsOf == "" {
		t.Fatal("table has no date")
	}
	cases := []struct {
		model                      string
		prompt, cached, completion int64
		want                       string
		ok                         bool
	}{
		{"gpt-4o-mini", 1_000_000, 0, 1_000_000, "0.75", true},
		{"gpt-4o-mini-2024-07-18", 1_000_000, 0, 0, "0.15", true},
		{"gpt-4o", 1_000_000, 500_000, 0, "1.875", true},
		{"models/gemini-2.5-flash", 0, 0, 1_000_000, "2.5", true},
		{"claude-sonnet-4-5-20250929", 2_000_000, 0, 0, "6", true},
		// The quickstart's call: a float gave 1.1700000000000001e-05.
		{"gpt-4o-mini", 78, 0, 0, "0.0000117", true},
		// Cached, uncached and completion terms are rounded once, together.
		{"gpt-4.1-nano", 3, 1, 7, "0.000003025", true},
		{"my-local-llama", 10, 0, 10, "0", false},
	}
	for _, c := range cases {
		got, ok := tb.Cost(c.model, c.prompt, c.cached, c.completion)
		if ok != c.ok || got.String() != c.want {
			t.Errorf("%s: got %v,%v want %v,%v", c.model, got, ok, c.want, c.ok)
		}
	}
	// gpt-4o must not be priced as gpt-4o-mini or vice versa (longest prefix).
	if p, _ := tb.Lookup("gpt-4o-mini-x"); p.Input != 0.15 {
		t.Fatalf("longest prefix: %+v", p)
	}
	over := tb.WithOverrides(map[string]Price{"my-local-llama": {Input: 1, Output: 2}})
	if got, ok := over.Cost("my-local-llama", 1_000_000, 0, 1_000_000); !ok || got != 3*money.Dollar {
		t.Fatalf("override: %v %v", got, ok)
	}
	if _, err := Parse([]byte(`{"models":{"x":{"input":-1}}}`)); err == nil {
		t.Fatal("negative price accepted")
	}
}

func TestLiveOverrides(t *testing.T) {
	base, _ := Default()
	l := NewLive(base)
	if _, ok := l.Cost("house-model", 1, 0, 1); ok {
		t.Fatal("unknown model priced")
	}
	if err := l.SetOverrides(`{"house-model":{"input_per_1m":2,"output_per_1m":4},"gpt-4o-mini":{"input_per_1m":1,"output_per_1m":1,"cached_input_per_1m":0.5}}`); err != nil {
		t.Fatal(err)
	}
	if got, ok := l.Cost("house-model", 1_000_000, 0, 1_000_000); !ok || got != 6*money.Dollar {
		t.Fatalf("override: %v %v", got, ok)
	}
	if got, _ := l.Cost("gpt-4o-mini", 1_000_000, 1_000_000, 0); got != money.Dollar/2 {
		t.Fatalf("replaced model: %v", got)
	}
	if err := l.SetOverrides(`{}`); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Cost("gpt-4o-mini", 1_000_000, 0, 0); got.String() != "0.15" {
		t.Fatalf("overrides cleared: %v", got)
	}
	if err := l.SetOverrides(`[`); err == nil {
		t.Fatal("bad JSON accepted")
	}
}
