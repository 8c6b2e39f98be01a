package anthropic

import (
	"math"
	"testing"
	"trueportai/services/gateway/internal/provider"

	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/metering/meteringtest"
)

var p = New("https://api.anthropic.test/v1")

func TestGolden(t *testing.T)              { meteringtest.RunGolden(t, p, "testdata", 10) }
func TestStreamPrefixNotDone(t *testing.T) { meteringtest.RunPrefixNotDone(t, p, "testdata") }
func FuzzMeter(f *testing.F)               { meteringtest.Fuzz(f, p, "testdata") }
func TestMeterJSONEdgeCases(t *testing.T)  { meteringtest.RunJSONCases(t, p, jsonCases) }
func TestStreamEdgeCases(t *testing.T)     { meteringtest.RunStreamCases(t, p, streamCases) }

var jsonCases = []meteringtest.JSONCase{
	{Name: "top-level string", Body: `"usage"`, Want: meteringtest.Unknown("")},
	{Name: "escaped model", Body: `{"model":"claude-\u0033","usage":{"input_tokens":1,"output_tokens":1}}`,
		Want: metering.Usage{Model: "claude-3", PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, Known: true}},
	{Name: "anthropic cache only", Body: `{"usage":{"cache_read_input_tokens":100,"output_tokens":0}}`,
		Want: metering.Usage{PromptTokens: 100, TotalTokens: 100, CachedTokens: 100, Known: true}},
	{Name: "anthropic bad cache write", Body: `{"usage":{"input_tokens":3,"cache_creation_input_tokens":"x","output_tokens":1}}`, Want: meteringtest.Unknown("")},
	{Name: "anthropic sum saturates", Body: `{"usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807,"output_tokens":1}}`,
		Want: metering.Usage{PromptTokens: math.MaxInt64, CompletionTokens: 1, TotalTokens: math.MaxInt64, CachedTokens: math.MaxInt64, Known: true}},
}

var streamCases = []meteringtest.StreamCase{
	{
		Name: "anthropic null counters in delta keep start values",
		Events: []meteringtest.Event{
			meteringtest.Ev("message_start", `{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":100,"cache_read_input_tokens":50,"cache_creation_input_tokens":0,"output_tokens":1}}}`),
			meteringtest.Ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":null,"cache_read_input_tokens":null,"output_tokens":30}}`),
			meteringtest.Ev("message_stop", `{"type":"message_stop"}`),
		},
		Want: metering.Usage{Model: "claude", PromptTokens: 150, CompletionTokens: 30, TotalTokens: 180, CachedTokens: 50, Known: true}, Done: true,
	},
	{
		Name: "anthropic delta only (missed start) is still known",
		Events: []meteringtest.Event{
			meteringtest.Ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":30}}`),
		},
		Want: metering.Usage{CompletionTokens: 30, TotalTokens: 30, Known: true},
	},
	{
		Name: "anthropic text mentioning usage is ignored",
		Events: []meteringtest.Event{
			meteringtest.Ev("message_start", `{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":9,"output_tokens":1}}}`),
			meteringtest.Ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\"usage\": {\"output_tokens\": 99999}"}}`),
			meteringtest.Ev("", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"usage\":{\"output_tokens\":7}}"}}`),
		},
		Want: metering.Usage{Model: "claude", PromptTokens: 9, CompletionTokens: 1, TotalTokens: 10, Known: true},
	},
	{
		Name: "anthropic unnamed message_stop",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"type":"message_stop"}`),
		},
		Want: metering.Usage{}, Done: true,
	},
}

func TestInspect(t *testing.T) {
	for body, want := range map[string]string{
		`{"model":"claude-sonnet-4-20250514","max_tokens":1024,"stream":true,"messages":[]}`: "claude-sonnet-4-20250514/true",
		`{"model":"claude-\u0033-haiku","max_tokens":1024,"messages":[]}`:                    "claude-3-haiku/false",
	} {
		r := p.Inspect(nil, provider.Credential{}, []byte(body))
		if got := r.Model + "/" + map[bool]string{true: "true", false: "false"}[r.Stream]; got != want {
			t.Errorf("%s: %s, want %s", body, got, want)
		}
	}
}

func BenchmarkStreamDelta(b *testing.B) {
	delta := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)
	m := new(StreamMeter)
	name := []byte("content_block_delta")
	b.ReportAllocs()
	b.SetBytes(int64(len(delta)))
	for b.Loop() {
		m.Event(name, delta)
	}
}
