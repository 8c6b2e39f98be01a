// Package globalreg is the registry of platform-wide config keys (set by
// platform admins): each key has a type, a default, a description and
// validation that turns a request value into canonical JSON.
package globalreg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Type is a global config value type.
type Type string

// Value types.
const (
	Bool    Type = "bool"
	PlanID  Type = "plan_id" // a plan of the catalog (checked by the caller)
	Pricing Type = "pricing" // model → per-1M-token prices
)

// Known keys.
const (
	SignupEnabled    = "signup.enabled"
	DefaultPlan      = "default_plan"
	PricingOverrides = "pricing.overrides"
)

// Def describes one known key.
type Def struct {
	Key         string
	Type        Type
	Default     any
	Description string
}

// Defs returns every known key, sorted.
func Defs() []Def {
	defs := []Def{
		{Key: SignupEnabled, Type: Bool, Default: true, Description: "when false, register answers 403 signup_disabled (except for invited addresses and PLATFORM_ADMIN_EMAILS)"},
		{Key: DefaultPlan, Type: PlanID, Default: "free", Description: "plan new tenants start on"},
		{Key: PricingOverrides, Type: Pricing, Default: map[string]Price{}, Description: "per-model prices overriding the built-in price table (USD per 1M tokens)"},
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Key < defs[j].Key })
	return defs
}

// Lookup finds a key's definition.
func Lookup(key string) (Def, bool) {
	for _, d := range Defs() {
		if d.Key == key {
			return d, true
		}
	}
	return Def{}, false
}

// Price is one model's price override (USD per 1M tokens).
type Price struct {
	InputPer1M       float64  `json:"input_per_1m"`
	OutputPer1M      float64  `json:"output_per_1m"`
	CachedInputPer1M *float64 `json:"cached_input_per_1m,omitempty"`
}

// Limits of pricing.overrides.
const (
	maxModels     = 2000
	maxModelLen   = 200
	maxPricePer1M = 1_000_000
)

// Normalize validates raw against d and returns its canonical JSON.
func (d Def) Normalize(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", fmt.Errorf("value is required")
	}
	switch d.Type {
	case Bool:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", fmt.Errorf("value must be true or false")
		}
		return fmt.Sprint(b), nil
	case PlanID:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("value must be a plan id such as \"free\"")
		}
		b, _ := json.Marshal(strings.TrimSpace(s))
		return string(b), nil
	case Pricing:
		return normalizePricing(raw)
	}
	return "", fmt.Errorf("unsupported type %s", d.Type)
}

func normalizePricing(raw json.RawMessage) (string, error) {
	var models map[string]json.RawMessage
	if err := json.Unmarshal(raw, &models); err != nil || models == nil {
		return "", fmt.Errorf(`value must be an object of model → {"input_per_1m", "output_per_1m", "cached_input_per_1m"?}`)
	}
	if len(models) > maxModels {
		return "", fmt.Errorf("value may hold at most %d models", maxModels)
	}
	out := make(map[string]Price, len(models))
	for model, v := range models {
		name := strings.TrimSpace(model)
		if name == "" || utf8.RuneCountInString(name) > maxModelLen || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return "", fmt.Errorf("model name %q must be 1 to %d characters without control characters", model, maxModelLen)
		}
		if _, dup := out[name]; dup {
			return "", fmt.Errorf("model %q is listed twice", name)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(v, &fields); err != nil || fields == nil {
			return "", fmt.Errorf("%s must be an object with input_per_1m and output_per_1m", name)
		}
		var p Price
		for k, fv := range fields {
			var dst *float64
			switch k {
			case "input_per_1m":
				dst = &p.InputPer1M
			case "output_per_1m":
				dst = &p.OutputPer1M
			case "cached_input_per_1m":
				p.CachedInputPer1M = new(float64)
				dst = p.CachedInputPer1M
			default:
				return "", fmt.Errorf("%s: unknown field %q (allowed: input_per_1m, output_per_1m, cached_input_per_1m)", name, k)
			}
			if err := json.Unmarshal(fv, dst); err != nil || math.IsNaN(*dst) || *dst < 0 || *dst > maxPricePer1M {
				return "", fmt.Errorf("%s.%s must be a number between 0 and %d", name, k, maxPricePer1M)
			}
		}
		for _, req := range []string{"input_per_1m", "output_per_1m"} {
			if _, ok := fields[req]; !ok {
				return "", fmt.Errorf("%s.%s is required", name, req)
			}
		}
		out[name] = p
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
