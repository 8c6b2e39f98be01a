package usage

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// encodeCases are events whose JSON appendEvent must produce exactly as
// json.Marshal does: typical ones, every optional field, and strings that
// need escaping (quotes, control characters, HTML, invalid UTF-8, U+2028).
func encodeCases() map[string]*Event {
	clean := cleanEvent()
	full := cleanEvent()
	pt, ct, tt, ca := int64(1), int64(-2), int64(1<<62), int64(0)
	ttfb, usd := 1e-7, 1e21
	resp := "resp <b>&amp;</b>\u2028\u2029"
	full.TTFBMS, full.PromptTokens, full.CompletionTokens, full.TotalTokens, full.CachedTokens, full.CostUSD = &ttfb, &pt, &ct, &tt, &ca, &usd
	full.ResponseBody, full.Error, full.ViolationIDs, full.Stream = &resp, "upstream said \"no\"\n\t\\", []string{"a", "b"}, true
	full.Violations = append(full.Violations, Violation{ID: "x", Shadow: true}, Violation{ID: "y", Matches: []Match{}})
	hostile := &Event{RequestID: "id\x00\x01\x1f\x7f", CreatedAt: time.Date(2026, 12, 6, 8, 0, 0, 123456789, time.FixedZone("x", 5*3600+1800)),
		TenantID: "t\xff\xfeu", Model: "a\u2028b<script>&", Path: "/p?q=\"1\"", KeyName: "ключ 🔑", LatencyMS: -0.000001, Outcome: "ok\b\f\r"}
	return map[string]*Event{"clean": &clean, "proxy": proxyEvent(), "full": &full, "hostile": hostile, "zero": {}}
}

// TestAppendEventMatchesMarshal: appendEvent is json.Marshal, byte for byte.
func TestAppendEventMatchesMarshal(t *testing.T) {
	for name, ev := range encodeCases() {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(name, err)
		}
		got, err := appendEvent(nil, ev)
		if err != nil {
			t.Fatal(name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

// TestAppendEventRefusesWhatMarshalRefuses: NaN, infinities and years
// RFC 3339 cannot hold are errors, as with json.Marshal.
func TestAppendEventRefusesWhatMarshalRefuses(t *testing.T) {
	for name, edit := range map[string]func(*Event){
		"nan":      func(e *Event) { e.LatencyMS = math.NaN() },
		"inf cost": func(e *Event) { v := math.Inf(1); e.CostUSD = &v },
		"year":     func(e *Event) { e.CreatedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"neg year": func(e *Event) { e.CreatedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zone":     func(e *Event) { e.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("z", 25*3600)) },
	} {
		ev := proxyEvent()
		edit(ev)
		_, merr := json.Marshal(ev)
		_, err := appendEvent(nil, ev)
		if merr == nil || err == nil {
			t.Errorf("%s: json.Marshal err %v, appendEvent err %v: want both to fail", name, merr, err)
		}
	}
}

// FuzzAppendEvent: for any strings and numbers, appendEvent is json.Marshal.
func FuzzAppendEvent(f *testing.F) {
	f.Add("req", "gpt-4o", "/chat", "body", "email", "a***@x", 1.5, int64(3), int64(1733472000123456789), true)
	f.Add("\x00\xff", "a\u2028", "<&>", "\"\\", "\t", "", math.SmallestNonzeroFloat64, int64(-1), int64(0), false)
	f.Fuzz(func(t *testing.T, id, model, path, body, kind, snippet string, lat float64, tok, unixNano int64, stream bool) {
		ev := &Event{RequestID: id, Model: model, Path: path, RequestBody: &body, LatencyMS: lat, PromptTokens: &tok, Stream: stream,
			CreatedAt: time.Unix(0, unixNano).UTC(), KeyName: snippet,
			Violations: []Violation{{ID: id, PolicyName: model, Matches: []Match{{Kind: kind, Snippet: snippet, Offset: int(tok)}}}}}
		want, merr := json.Marshal(ev)
		got, err := appendEvent(nil, ev)
		if (merr == nil) != (err == nil) {
			t.Fatalf("json.Marshal err %v, appendEvent err %v", merr, err)
		}
		if merr == nil && !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

// TestEncodeAllocs: encoding a typical event allocates its output
// only (it runs on the request path).
func TestEncodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; make test's non-race run checks this")
	}
	ev := proxyEvent()
	if n := testing.AllocsPerRun(1000, func() {
		if _, _, err := Encode(ev, 1<<20); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Fatalf("Encode of a typical event: %v allocations, want 1", n)
	}
	if b, _, _ := Encode(ev, 1<<20); !strings.HasPrefix(string(b), `{"request_id":"`) {
		t.Fatalf("Encode: %s", b)
	}
}
