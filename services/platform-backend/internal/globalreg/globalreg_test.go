package globalreg

import (
	"encoding/json"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		key, in, want string
		ok            bool
	}{
		{SignupEnabled, `true`, `true`, true},
		{SignupEnabled, ` false `, `false`, true},
		{SignupEnabled, `"false"`, "", false},
		{SignupEnabled, `null`, "", false},
		{SignupEnabled, ``, "", false},
		{DefaultPlan, `" pro "`, `"pro"`, true},
		{DefaultPlan, `""`, "", false},
		{DefaultPlan, `3`, "", false},
		{PricingOverrides, `{}`, `{}`, true},
		{PricingOverrides, `{"gpt-4o":{"input_per_1m":2.5,"output_per_1m":10}}`, `{"gpt-4o":{"input_per_1m":2.5,"output_per_1m":10}}`, true},
		{PricingOverrides, `{" m ":{"output_per_1m":1,"input_per_1m":0,"cached_input_per_1m":0}}`, `{"m":{"input_per_1m":0,"output_per_1m":1,"cached_input_per_1m":0}}`, true},
		{PricingOverrides, `{"m":{"input_per_1m":1,"output_per_1m":1},"m ":{"input_per_1m":1,"output_per_1m":1}}`, "", false},
		{PricingOverrides, `{"m":{"input_per_1m":-0.1,"output_per_1m":1}}`, "", false},
		{PricingOverrides, `{"m":{"input_per_1m":1e7,"output_per_1m":1}}`, "", false},
		{PricingOverrides, `{"m":{"input_per_1m":1}}`, "", false},
		{PricingOverrides, `{"m":{"input_per_1m":1,"output_per_1m":1,"x":1}}`, "", false},
		{PricingOverrides, `{"m":null}`, "", false},
		{PricingOverrides, `{"m\u0000":{"input_per_1m":1,"output_per_1m":1}}`, "", false},
		{PricingOverrides, `[]`, "", false},
		{PricingOverrides, `"x"`, "", false},
	} {
		d, ok := Lookup(tc.key)
		if !ok {
			t.Fatalf("no def %s", tc.key)
		}
		got, err := d.Normalize(json.RawMessage(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s %s = %q, %v; want %q ok=%v", tc.key, tc.in, got, err, tc.want, tc.ok)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup(nope) found a def")
	}
}

func TestDefaultsNormalize(t *testing.T) {
	for _, d := range Defs() {
		b, _ := json.Marshal(d.Default)
		if _, err := d.Normalize(b); err != nil {
			t.Errorf("%s default %s does not validate: %v", d.Key, b, err)
		}
	}
}
