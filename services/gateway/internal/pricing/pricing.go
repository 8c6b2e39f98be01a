// Package pricing turns metered tokens into a cost from a dated price table
// shipped in the repository (prices.json), optionally overridden.
package pricing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"trueportai/services/internal/money"
)

//go:embed prices.json
var defaultTable []byte

// Price is USD per 1M tokens.
type Price struct {
	Input       float64 `json:"input"`
	Output      float64 `json:"output"`
	CachedInput float64 `json:"cached_input"`
}

// Table maps model names to prices. Lookups also match dated or suffixed
// variants by longest prefix ("gpt-4o-mini-2024-07-18" → "gpt-4o-mini").
type Table struct {
	AsOf   string
	prices map[string]Price
	names  []string // longest first
}

type file struct {
	AsOf   string           `json:"as_of"`
	Models map[string]Price `json:"models"`
}

// Default returns the shipped table.
func Default() (*Table, error) { return Parse(defaultTable) }

// Parse reads a table in the prices.json shape.
func Parse(b []byte) (*Table, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	for name, p := range f.Models {
		if p.Input < 0 || p.Output < 0 || p.CachedInput < 0 {
			return nil, fmt.Errorf("price table: negative price for %s", name)
		}
	}
	return newTable(f.AsOf, f.Models), nil
}

func newTable(asOf string, m map[string]Price) *Table {
	t := &Table{AsOf: asOf, prices: m}
	for n := range m {
		t.names = append(t.names, n)
	}
	sort.Slice(t.names, func(i, j int) bool { return len(t.names[i]) > len(t.names[j]) })
	return t
}

// WithOverrides returns a table where overrides replace or add models.
func (t *Table) WithOverrides(over map[string]Price) *Table {
	m := make(map[string]Price, len(t.prices)+len(over))
	for k, v := range t.prices {
		m[k] = v
	}
	for k, v := range over {
		m[k] = v
	}
	return newTable(t.AsOf, m)
}

// Lookup finds the price of model.
func (t *Table) Lookup(model string) (Price, bool) {
	if p, ok := t.prices[model]; ok {
		return p, true
	}
	// Provider-prefixed names ("models/gemini-2.5-flash", "openai/gpt-4o").
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
		if p, ok := t.prices[model]; ok {
			return p, true
		}
	}
	for _, n := range t.names {
		if strings.HasPrefix(model, n) && len(model) > len(n) && (model[len(n)] == '-' || model[len(n)] == '@' || model[len(n)] == ':') {
			return t.prices[n], true
		}
	}
	return Price{}, false
}

// Cost prices prompt (of which cached) and completion tokens; ok is false for
// an unknown model. The prices (USD per 1M tokens, read as decimals with at
// most 10 decimals) and the token counts are multiplied exactly; the sum is
// rounded once, half up, to money's 10⁻¹⁰ dollar.
func (t *Table) Cost(model string, prompt, cached, completion int64) (money.USD, bool) {
	p, ok := t.Lookup(model)
	if !ok {
		return 0, false
	}
	cached = min(max(cached, 0), prompt)
	var sum money.Product
	sum.Add(prompt-cached, money.FromFloat(p.Input))
	sum.Add(cached, money.FromFloat(p.CachedInput))
	sum.Add(completion, money.FromFloat(p.Output))
	return sum.Div(1_000_000), true
}

// Models returns a copy of the table's prices.
func (t *Table) Models() map[string]Price {
	m := make(map[string]Price, len(t.prices))
	for k, v := range t.prices {
		m[k] = v
	}
	return m
}

// Live is the table in force: the shipped (or PRICING_FILE) base plus the
// platform's global pricing.overrides, swapped atomically when they change.
type Live struct {
	base *Table
	cur  atomic.Pointer[Table]
}

// NewLive starts with base alone.
func NewLive(base *Table) *Live {
	l := &Live{base: base}
	l.cur.Store(base)
	return l
}

// Cost prices with the current table.
func (l *Live) Cost(model string, prompt, cached, completion int64) (money.USD, bool) {
	return l.cur.Load().Cost(model, prompt, cached, completion)
}

// SetOverrides applies the global config pricing.overrides JSON
// ({"model": {"input_per_1m", "output_per_1m", "cached_input_per_1m"?}}).
// A cached price defaults to the input price.
func (l *Live) SetOverrides(raw string) error {
	var in map[string]struct {
		Input  float64  `json:"input_per_1m"`
		Output float64  `json:"output_per_1m"`
		Cached *float64 `json:"cached_input_per_1m"`
	}
	if raw == "" {
		raw = "{}"
	}
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return fmt.Errorf("pricing overrides: %w", err)
	}
	over := make(map[string]Price, len(in))
	for model, p := range in {
		cached := p.Input
		if p.Cached != nil {
			cached = *p.Cached
		}
		over[model] = Price{Input: p.Input, Output: p.Output, CachedInput: cached}
	}
	l.cur.Store(l.base.WithOverrides(over))
	return nil
}
