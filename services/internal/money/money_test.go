package money

import (
	"encoding/json"
	"math"
	"testing"
)

func TestStringAndParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want USD
		out  string
	}{
		{"0", 0, "0"},
		{"0.0000117", 117000, "0.0000117"},
		{"1.1700000000000001e-05", 117000, "0.0000117"},
		{"12", 12 * Dollar, "12"},
		{"-0.5", -Dollar / 2, "-0.5"},
		{"0.0000000001", 1, "0.0000000001"},
		{"0.00000000005", 1, "0.0000000001"}, // half away from zero
		{"-0.00000000005", -1, "-0.0000000001"},
		{"0.00000000004999", 0, "0"},
		{"123456.789", 123456789 * Dollar / 1000, "123456.789"},
		{"1e3", 1000 * Dollar, "1000"},
		{"+2.50", 25 * Dollar / 10, "2.5"},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
			continue
		}
		if s := got.String(); s != c.out {
			t.Errorf("%d.String() = %q, want %q", got, s, c.out)
		}
	}
	for _, bad := range []string{"", "abc", "1/3", "0x10", "1.2.3", "--1", "1e400", ".", "1_000"} {
		if v, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", bad, v)
		}
	}
	if s := USD(math.MinInt64).String(); s != "-922337203.6854775808" {
		t.Errorf("min = %s", s)
	}
}

// TestJSONRoundTrip: an amount written as a JSON number reads back as the
// same amount, through float64 too (at most 10 decimals, 15 significant
// digits below a million dollars).
func TestJSONRoundTrip(t *testing.T) {
	for _, u := range []USD{0, 1, 117000, 99999999999, 123456789012345, -7, Dollar} {
		b, err := json.Marshal(struct {
			C USD `json:"c"`
		}{u})
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			C USD `json:"c"`
		}
		if err := json.Unmarshal(b, &back); err != nil || back.C != u {
			t.Errorf("%s: back %d, %v", b, back.C, err)
		}
		var f struct {
			C float64 `json:"c"`
		}
		if err := json.Unmarshal(b, &f); err != nil || FromFloat(f.C) != u {
			t.Errorf("%s through float64: %v", b, f.C)
		}
	}
	var s USD
	if err := json.Unmarshal([]byte(`"0.25"`), &s); err != nil || s != Dollar/4 {
		t.Errorf("string form: %d, %v", s, err)
	}
}

func TestProduct(t *testing.T) {
	// 78 tokens at $0.15 per 1M: 0.0000117, exactly.
	var p Product
	p.Add(78, FromFloat(0.15))
	if got := p.Div(1_000_000); got != 117000 {
		t.Fatalf("got %s", got)
	}
	// Terms are added before the one rounding: 1 token at 0.00004 per 1M is
	// 0.4 units (rounds to 0) but three of them are 1.2 (rounds to 1).
	p = Product{}
	for range 3 {
		p.Add(1, 400_000)
	}
	if got := p.Div(1_000_000); got != 1 {
		t.Fatalf("three terms: got %d", got)
	}
	// No overflow for a huge request at a huge price.
	p = Product{}
	p.Add(1_000_000_000, 1000*Dollar)
	if got := p.Div(1_000_000); got != 1_000_000*Dollar {
		t.Fatalf("big: got %s", got)
	}
	p = Product{}
	p.Add(math.MaxInt64, math.MaxInt64)
	if got := p.Div(1); got != math.MaxInt64 {
		t.Fatalf("saturation: got %d", got)
	}
}
