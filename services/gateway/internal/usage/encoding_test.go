package usage

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"trueportai/services/internal/money"
)

func fullEvent() Event {
	ttfb, pt, ct, tt, ca := 12.5, int64(1000), int64(500), int64(1500), int64(10)
	cost := money.USD(4_500_000) // 0.00045
	body := "{\"messages\":[\"line one\\nline two\"]}\n"
	return Event{RequestID: "req-1", CreatedAt: time.Date(2026, 11, 28, 10, 11, 12, 123456000, time.UTC), TenantID: "t-1", Env: "production",
		KeyID: "k-1", KeyName: "key\none", Provider: "openai", Model: "gpt-4o-mini", Path: "/chat/completions", StatusCode: 200, Stream: true,
		LatencyMS: 812.25, TTFBMS: &ttfb, PromptTokens: &pt, CompletionTokens: &ct, TotalTokens: &tt, CachedTokens: &ca, CostUSD: &cost,
		Outcome: OutcomeFlagged, Error: "", ViolationIDs: []string{"v-1"}, RequestBody: &body,
		Violations: []Violation{{ID: "v-1", PolicyID: "p-1", PolicyName: "pii", Type: "pii", Action: "flag", Severity: "high", Shadow: true,
			Direction: "request", Matches: []Match{{Kind: "email", Snippet: "a***@x.com", Offset: 7}}}, {ID: "v-2", Matches: []Match{}}}}
}

// TestEncodeDecodeBinary: an event goes through its binary line and comes
// back equal; the line holds no '\n' (message framing, spool lines) even
// when the event's text does.
func TestEncodeDecodeBinary(t *testing.T) {
	ev := fullEvent()
	line, sanitised, err := Encode(&ev, 1<<20)
	if err != nil || sanitised {
		t.Fatalf("Encode: %v, sanitised %v", err, sanitised)
	}
	if !Binary(line) || bytes.IndexByte(line, '\n') >= 0 {
		t.Fatalf("line is not a one-line binary event: %q", line)
	}
	js, _ := json.Marshal(&ev)
	if len(line) >= len(js) {
		t.Errorf("binary line %d bytes, JSON %d: not smaller", len(line), len(js))
	}
	got, err := Decode(line)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, ev)
	}
	// Unknown usage stays unknown (nil), not 0.
	bare := Event{RequestID: "r", TenantID: "t", CreatedAt: ev.CreatedAt}
	line, _, _ = Encode(&bare, 1<<20)
	if got, err := Decode(line); err != nil || got.TotalTokens != nil || got.CostUSD != nil || got.TTFBMS != nil || got.RequestBody != nil {
		t.Fatalf("absent fields: %+v, %v", got, err)
	}
}

// TestDecodeJSONFromOlderPublishers: a JSON line of a publisher from before
// the binary encoding (its cost a binary float) decodes to the same event,
// the cost as the decimal it stood for.
func TestDecodeJSONFromOlderPublishers(t *testing.T) {
	old := `{"request_id":"req-old","created_at":"2026-11-28T10:11:12.123456789Z","tenant_id":"t-1","env":"production","provider":"openai",` +
		`"model":"gpt-4o-mini","path":"/chat/completions","status_code":200,"stream":false,"latency_ms":3.5,"prompt_tokens":78,` +
		`"total_tokens":78,"cost_usd":1.1700000000000001e-05,"outcome":"ok"}`
	ev, err := Decode([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if ev.RequestID != "req-old" || ev.CostUSD == nil || ev.CostUSD.String() != "0.0000117" || *ev.TotalTokens != 78 {
		t.Fatalf("decoded %+v (cost %v)", ev, ev.CostUSD)
	}
	// The same event in both encodings is the same row: created_at to the
	// microsecond (what Postgres keeps and the idempotency key holds).
	line, _, _ := Encode(&ev, 1<<20)
	bin, _ := Decode(line)
	if bin.CreatedAt.UnixMicro() != ev.CreatedAt.UnixMicro() || bin.RequestID != ev.RequestID {
		t.Fatalf("binary form differs in its key: %v vs %v", bin.CreatedAt, ev.CreatedAt)
	}
	for _, bad := range []string{"", "garbage", "#not base64!", "#" + strings.Repeat("A", 7), "{"} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

// TestDeadLetterOfBinaryLineIsJSON: a binary line refused downstream is
// kept as its JSON (readable, replayable: the ingester reads JSON).
func TestDeadLetterOfBinaryLineIsJSON(t *testing.T) {
	ev := fullEvent()
	line, _, _ := Encode(&ev, 1<<20)
	dl := NewDeadLetter(StageInsert, line, nil, 7, 1<<20)
	if !dl.Replayable() || dl.RequestID != "req-1" || dl.TenantID != "t-1" {
		t.Fatalf("dead letter %+v", dl)
	}
	back, err := Decode(dl.Event)
	if err != nil || !reflect.DeepEqual(back, ev) {
		t.Fatalf("dead letter's event: %v\n%+v", err, back)
	}
}
