package metering

import (
	"math"
	"strings"
	"testing"
)

func count(raw string) Count {
	var c Count
	c.Read([]byte(raw))
	return c
}

func TestCountAndMakeUsage(t *testing.T) {
	tests := []struct {
		name                      string
		prompt, completion, total string // raw JSON, "" = absent
		want                      Usage
	}{
		{"both", "10", "5", "", Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Known: true}},
		{"total given wins", "10", "5", "20", Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 20, Known: true}},
		{"prompt only", "7", "", "", Usage{PromptTokens: 7, TotalTokens: 7, Known: true}},
		{"only total is unknown", "", "", "7", Usage{}},
		{"nothing is unknown", "", "", "", Usage{}},
		{"nulls are unknown", "null", "null", "", Usage{}},
		{"explicit zeros are known", "0", "0", "0", Usage{Known: true}},
		{"proto3 string int", `"12"`, `"3"`, "", Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15, Known: true}},
		{"integral exponent", "1e3", "2.0", "", Usage{PromptTokens: 1000, CompletionTokens: 2, TotalTokens: 1002, Known: true}},
		{"fractional is bad", "1.5", "2", "", Usage{}},
		{"negative is bad", "-1", "2", "", Usage{}},
		{"beyond int64 is bad", "9223372036854775808", "1", "", Usage{}},
		{"huge digits are bad", "1" + strings.Repeat("0", 400), "1", "", Usage{}},
		{"huge exponent is bad", "1e400", "1", "", Usage{}},
		{"non-numeric is bad", `"many"`, "2", "", Usage{}},
		{"object is bad", `{"n":1}`, "2", "", Usage{}},
		{"bad total spoils", "1", "2", "-3", Usage{}},
		{"sum saturates", "9223372036854775807", "5", "", Usage{PromptTokens: math.MaxInt64, CompletionTokens: 5, TotalTokens: math.MaxInt64, Known: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p, c, tot Count
			if tt.prompt != "" {
				p = count(tt.prompt)
			}
			if tt.completion != "" {
				c = count(tt.completion)
			}
			if tt.total != "" {
				tot = count(tt.total)
			}
			if got := MakeUsage("", p, c, tot, Count{}); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSumAndFirstReported(t *testing.T) {
	s := Sum(count("1"), count("null"), count("2"))
	if u := MakeUsage("", s, Count{}, Count{}, Count{}); u.PromptTokens != 3 || !u.Known {
		t.Fatalf("sum %+v", u)
	}
	if u := MakeUsage("", Sum(count("1"), count("-2")), count("1"), Count{}, Count{}); u.Known {
		t.Fatal("a bad part must spoil the sum")
	}
	if got := FirstReported(Count{}, count("4")); !got.Reported() {
		t.Fatal("FirstReported ignored the second")
	}
	if got := FirstReported(count("null"), count("4")); !got.Reported() {
		t.Fatal("null counts as unreported")
	}
}

type sink map[string]string

func (s sink) Member(k, v []byte) { s[string(k)] = string(v) }

func TestTopLevel(t *testing.T) {
	s := sink{}
	model, ok := TopLevel([]byte(`{"model":"m","choices":[{"usage":{"x":1}}],"usage":{"a":1,"b":2},"model":"n"}`), "model", "usage", s)
	if !ok || model != "n" || s["a"] != "1" || s["b"] != "2" || len(s) != 2 {
		t.Fatalf("%q %v %v", model, ok, s)
	}
	if _, ok := TopLevel([]byte(`{"model":"m"`), "model", "usage", sink{}); ok {
		t.Fatal("invalid JSON accepted")
	}
	if _, ok := TopLevel([]byte(`[1]`), "model", "usage", sink{}); ok {
		t.Fatal("array accepted")
	}
}
