package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/metering/meteringtest"
	"trueportai/services/gateway/internal/provider"
)

var format Format

func TestGolden(t *testing.T)              { meteringtest.RunGolden(t, format, "testdata", 15) }
func TestStreamPrefixNotDone(t *testing.T) { meteringtest.RunPrefixNotDone(t, format, "testdata") }
func FuzzMeter(f *testing.F)               { meteringtest.Fuzz(f, format, "testdata") }

func TestMeterJSONEdgeCases(t *testing.T) { meteringtest.RunJSONCases(t, format, jsonCases) }
func TestStreamEdgeCases(t *testing.T)    { meteringtest.RunStreamCases(t, format, streamCases) }

var jsonCases = []meteringtest.JSONCase{
	{Name: "empty body", Body: ``, Want: meteringtest.Unknown("")},
	{Name: "garbage", Body: `<html>502 Bad Gateway</html>`, Want: meteringtest.Unknown("")},
	{Name: "truncated", Body: `{"model":"gpt-4o","usage":{"prompt_tokens":5,"completion_tokens":`, Want: meteringtest.Unknown("")},
	{Name: "top-level array for openai", Body: `[{"usage":{"prompt_tokens":1}}]`, Want: meteringtest.Unknown("")},
	{Name: "usage missing", Body: `{"model":"m"}`, Want: meteringtest.Unknown("m")},
	{Name: "usage empty object", Body: `{"model":"m","usage":{}}`, Want: meteringtest.Unknown("m")},
	{Name: "only total reported", Body: `{"model":"m","usage":{"total_tokens":7}}`, Want: meteringtest.Unknown("m")},
	{Name: "prompt only", Body: `{"model":"m","usage":{"prompt_tokens":7}}`,
		Want: metering.Usage{Model: "m", PromptTokens: 7, TotalTokens: 7, Known: true}},
	{Name: "completion only", Body: `{"model":"m","usage":{"completion_tokens":3}}`,
		Want: metering.Usage{Model: "m", CompletionTokens: 3, TotalTokens: 3, Known: true}},
	{Name: "explicit zero is known", Body: `{"model":"m","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`,
		Want: metering.Usage{Model: "m", Known: true}},
	{Name: "max int64", Body: `{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":0}}`,
		Want: metering.Usage{PromptTokens: math.MaxInt64, TotalTokens: math.MaxInt64, Known: true}},
	{Name: "sum saturates", Body: `{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":5}}`,
		Want: metering.Usage{PromptTokens: math.MaxInt64, CompletionTokens: 5, TotalTokens: math.MaxInt64, Known: true}},
	{Name: "beyond int64", Body: `{"model":"m","usage":{"prompt_tokens":9223372036854775808,"completion_tokens":1}}`, Want: meteringtest.Unknown("m")},
	{Name: "huge digits", Body: `{"usage":{"prompt_tokens":1` + strings.Repeat("0", 400) + `,"completion_tokens":1}}`, Want: meteringtest.Unknown("")},
	{Name: "huge exponent", Body: `{"usage":{"prompt_tokens":1e400,"completion_tokens":1}}`, Want: meteringtest.Unknown("")},
	{Name: "exponent integral", Body: `{"usage":{"prompt_tokens":1e3,"completion_tokens":2.0}}`,
		Want: metering.Usage{PromptTokens: 1000, CompletionTokens: 2, TotalTokens: 1002, Known: true}},
	{Name: "fractional", Body: `{"usage":{"prompt_tokens":1.5,"completion_tokens":2}}`, Want: meteringtest.Unknown("")},
	{Name: "negative", Body: `{"usage":{"prompt_tokens":-1,"completion_tokens":2}}`, Want: meteringtest.Unknown("")},
	{Name: "bad cached makes unknown", Body: `{"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":-4}}}`, Want: meteringtest.Unknown("")},
	{Name: "non-numeric string", Body: `{"usage":{"prompt_tokens":"many","completion_tokens":2}}`, Want: meteringtest.Unknown("")},
	{Name: "object as count", Body: `{"usage":{"prompt_tokens":{"n":1},"completion_tokens":2}}`, Want: meteringtest.Unknown("")},
	{Name: "null counters", Body: `{"usage":{"prompt_tokens":null,"completion_tokens":null}}`, Want: meteringtest.Unknown("")},
	{Name: "usage wrong type", Body: `{"model":"m","usage":"lots"}`, Want: meteringtest.Unknown("m")},
	{Name: "model wrong type tolerated", Body: `{"model":42,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
		Want: metering.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, Known: true}},
}

var streamCases = []meteringtest.StreamCase{
	{
		Name: "openai last usage chunk wins",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"model":"m","choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`),
			meteringtest.Ev("", `{"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}`),
			meteringtest.Ev("", ` [DONE] `),
		},
		Want: metering.Usage{Model: "m", PromptTokens: 5, CompletionTokens: 4, TotalTokens: 9, Known: true}, Done: true,
	},
	{
		Name: "openai usage with spaces and escaped model",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"model" : "gpt-\u0034o", "usage" :
 {"prompt_tokens" : 2 , "completion_tokens" : 3}}`),
		},
		Want: metering.Usage{Model: "gpt-4o", PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5, Known: true},
	},
	{
		Name: "openai error event mid-stream",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"model":"m","choices":[{"delta":{"content":"a"}}]}`),
			meteringtest.Ev("", `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`),
		},
		Want: metering.Usage{Model: "m"},
	},
	{
		Name: "openai garbage and empty data",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"usage":{"prompt_tokens":1`),
			meteringtest.Ev("", ``),
			meteringtest.Ev("", `not json "usage": 5`),
		},
		Want: metering.Usage{},
	},
	{
		Name: "responses incomplete ends with usage",
		Events: []meteringtest.Event{
			meteringtest.Ev("response.incomplete", `{"type":"response.incomplete","response":{"model":"o3","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":10,"output_tokens":100,"total_tokens":110,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":100}}}}`),
		},
		Want: metering.Usage{Model: "o3", PromptTokens: 10, CompletionTokens: 100, TotalTokens: 110, Known: true}, Done: true,
	},
	{
		Name: "responses event text mentioning completed is not terminal",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"type":"response.created","response":{"model":"m","usage":null}}`),
			meteringtest.Ev("", `{"type":"response.output_text.delta","delta":"\"response.completed\""}`),
		},
		Want: metering.Usage{Model: "m"},
	},
}

// TestStreamMeterDataNotRetained checks that the meter copies what it keeps:
// callers reuse their read buffers between events.
func TestStreamMeterDataNotRetained(t *testing.T) {
	buf := []byte(`{"choices":[],"model":"gpt-4o","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`)
	m := NewStreamMeter(false)
	m.Event(nil, buf)
	for i := range buf {
		buf[i] = 'x'
	}
	want := metering.Usage{Model: "gpt-4o", PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, Known: true}
	if got := m.Usage(); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestIsUsageOnlyChunk(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"openai usage chunk", `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`, true},
		{"azure usage chunk", `{"choices":[],"created":1736407895,"id":"chatcmpl-1","model":"gpt-4o-mini-2024-07-18","object":"chat.completion.chunk","system_fingerprint":"fp","usage":{"completion_tokens":3,"prompt_tokens":2118,"total_tokens":2121}}`, true},
		{"whitespace", "{ \"choices\" : [ ] ,\n \"usage\" : { \"prompt_tokens\" : 1 } }", true},
		{"choices missing", `{"usage":{"prompt_tokens":1,"completion_tokens":1}}`, true},
		{"choices null", `{"choices":null,"usage":{"prompt_tokens":1}}`, true},
		{"responses usage names", `{"choices":[],"usage":{"input_tokens":1,"output_tokens":2}}`, true},
		{"content chunk usage null", `{"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}`, false},
		{"content chunk without usage", `{"model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}`, false},
		{"final chunk with usage and choices", `{"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`, false},
		{"azure prompt filter chunk", `{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}`, false},
		{"azure old prompt annotations chunk", `{"id":"","object":"","created":0,"model":"","prompt_annotations":[{"prompt_index":0}],"choices":[],"usage":null}`, false},
		{"empty usage object", `{"choices":[],"usage":{}}`, false},
		{"usage not object", `{"choices":[],"usage":5}`, false},
		{"choices not array", `{"choices":{},"usage":{"prompt_tokens":1}}`, false},
		{"nested usage only", `{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"x"}}]},"usage":{"prompt_tokens":1}}]}`, false},
		{"done sentinel", `[DONE]`, false},
		{"empty", ``, false},
		{"truncated", `{"choices":[],"usage":{"prompt_tokens":1`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUsageOnlyChunk([]byte(tt.data)); got != tt.want {
				t.Errorf("IsUsageOnlyChunk(%s) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
}

// TestHiddenUsageChunkGoldenStreams checks that exactly the include_usage
// chunk of each golden chat stream is recognised and, with hideUsage, not
// forwarded while still metered.
func TestHiddenUsageChunkGoldenStreams(t *testing.T) {
	for _, tc := range meteringtest.Load(t, "testdata", 1) {
		if !tc.Stream {
			continue
		}
		n, hidden := 0, 0
		m := NewStreamMeter(true)
		for _, e := range tc.Events() {
			if IsUsageOnlyChunk(e.Data) {
				n++
			}
			if !m.Event([]byte(e.Name), e.Data) {
				hidden++
			}
		}
		want := 0
		if tc.Want.Known && !bytes.Contains(tc.Input, []byte("response.")) {
			want = 1
		}
		if n != want || hidden != want {
			t.Errorf("%s: %d usage-only chunks, %d hidden, want %d", tc.Name, n, hidden, want)
		}
		if m.Usage() != tc.Want.Usage() {
			t.Errorf("%s: hiding changed the usage: %+v", tc.Name, m.Usage())
		}
	}
}

func TestEnsureStreamUsage(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // "" means: unchanged (same bytes)
		asked   bool
		wantErr error
	}{
		{
			name: "adds stream_options",
			in:   `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`,
			want: `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name: "keeps formatting and trailing newline",
			in:   "{\n  \"stream\": true,\n  \"model\": \"gpt-4o\"\n}\n",
			want: "{\n  \"stream\": true,\n  \"model\": \"gpt-4o\",\"stream_options\":{\"include_usage\":true}\n}\n",
		},
		{
			name:  "client asked",
			in:    `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}`,
			asked: true,
		},
		{
			name:  "client asked with spacing",
			in:    `{"model":"gpt-4o","stream" : true,"stream_options" : { "include_usage" : true } }`,
			asked: true,
		},
		{
			name: "include_usage false is overridden",
			in:   `{"stream":true,"stream_options":{"include_usage":false}}`,
			want: `{"stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name: "other stream options preserved",
			in:   `{"stream":true,"stream_options":{"include_obfuscation":false}}`,
			want: `{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true}}`,
		},
		{
			name: "empty stream_options",
			in:   `{"stream":true,"stream_options":{ }}`,
			want: `{"stream":true,"stream_options":{"include_usage":true }}`,
		},
		{
			name: "null stream_options",
			in:   `{"stream_options":null,"stream":true}`,
			want: `{"stream_options":{"include_usage":true},"stream":true}`,
		},
		{
			name: "big numbers and unknown fields preserved",
			in:   `{"model":"gpt-4o","seed":12345678901234567890123,"logit_bias":{"50256":-100},"temperature":0.1000000000000000055511151231257827,"x_vendor":{"a":[1e999,-0.0]},"stream":true}`,
			want: `{"model":"gpt-4o","seed":12345678901234567890123,"logit_bias":{"50256":-100},"temperature":0.1000000000000000055511151231257827,"x_vendor":{"a":[1e999,-0.0]},"stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name:  "escaped key names",
			in:    `{"str\u0065am":true,"stream_\u006fptions":{"include_usag\u0065":true}}`,
			asked: true,
		},
		{
			name: "duplicate keys: last wins",
			in:   `{"stream":false,"stream":true,"stream_options":{"include_usage":true},"stream_options":{}}`,
			want: `{"stream":false,"stream":true,"stream_options":{"include_usage":true},"stream_options":{"include_usage":true}}`,
		},
		{
			name: "nested stream key ignored",
			in:   `{"metadata":{"stream":true},"messages":[{"content":"\"stream\":true"}]}`,
		},
		{name: "stream false", in: `{"model":"gpt-4o","stream":false}`},
		{name: "stream absent", in: `{"model":"gpt-4o","messages":[]}`},
		{name: "stream string", in: `{"model":"gpt-4o","stream":"true"}`},
		{name: "top-level array", in: `[{"stream":true}]`},
		{name: "not json", in: `model=gpt-4o&stream=true`, wantErr: ErrNotJSON},
		{name: "truncated", in: `{"model":"gpt-4o","stream":true`, wantErr: ErrNotJSON},
		{name: "empty", in: ``, wantErr: ErrNotJSON},
		{name: "stream_options wrong type", in: `{"stream":true,"stream_options":"yes"}`, wantErr: ErrBadStreamOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			orig := bytes.Clone(in)
			out, asked, err := EnsureStreamUsage(in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(in, orig) {
				t.Fatalf("input modified: %s", in)
			}
			if asked != tt.asked {
				t.Errorf("clientAsked = %v, want %v", asked, tt.asked)
			}
			want := tt.want
			if want == "" {
				want = tt.in
				if len(in) > 0 && &out[0] != &in[0] {
					t.Errorf("unchanged body was copied")
				}
			}
			if string(out) != want {
				t.Errorf("out:\n got  %s\n want %s", out, want)
			}
			if tt.want != "" {
				checkEnsured(t, in, out)
			}
		})
	}
}

// checkEnsured verifies that out equals in apart from
// stream_options.include_usage=true, comparing decoded values with exact
// number text, and that the result is stable.
func checkEnsured(t testing.TB, in, out []byte) {
	t.Helper()
	var a, b map[string]any
	if err := decodeNumbers(in, &a); err != nil {
		t.Fatalf("input: %v", err)
	}
	if err := decodeNumbers(out, &b); err != nil {
		t.Fatalf("output is not valid JSON: %v\n%s", err, out)
	}
	so, _ := a["stream_options"].(map[string]any)
	if so == nil {
		so = map[string]any{}
	}
	so["include_usage"] = true
	a["stream_options"] = so
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("content changed:\n in  %s\n out %s", in, out)
	}
	again, asked, err := EnsureStreamUsage(out)
	if err != nil || !asked || !bytes.Equal(again, out) {
		t.Fatalf("second pass: asked=%v err=%v changed=%v", asked, err, !bytes.Equal(again, out))
	}
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func TestPrepareOnlyChatStreams(t *testing.T) {
	body := []byte(`{"model":"m","stream":true}`)
	for rest, want := range map[string]bool{"chat/completions": true, "completions": true, "responses": false, "embeddings": false, "deployments/x/chat/completions": true} {
		out, hide := format.Prepare(&provider.Target{Rest: rest}, provider.Request{Stream: true}, body)
		if changed := !bytes.Equal(out, body); changed != want || hide != want {
			t.Errorf("%s: changed=%v hide=%v, want %v", rest, changed, hide, want)
		}
	}
	if out, hide := format.Prepare(&provider.Target{Rest: "chat/completions"}, provider.Request{}, body); hide || !bytes.Equal(out, body) {
		t.Error("a non-streaming request was prepared")
	}
}

func FuzzEnsureStreamUsage(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	f.Add([]byte(`{"stream":true,"stream_options":{"include_usage":false,"x":1}}`))
	f.Add([]byte(`{"stream":true,"stream_options":null,"seed":123456789012345678901234567890}`))
	f.Add([]byte(`{"str\u0065am":true,"stream_options":{}}`))
	f.Add([]byte(`{"stream":true,"stream":false}`))
	f.Add([]byte(" {\n\"stream\" :\ttrue } "))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		out, asked, err := EnsureStreamUsage(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("input modified")
		}
		if err != nil || asked || bytes.Equal(out, body) {
			if !bytes.Equal(out, body) {
				t.Fatalf("out differs from body although err=%v asked=%v", err, asked)
			}
			return
		}
		checkEnsured(t, body, out)
		if !provider.BodyModelAndStream(out).Stream {
			t.Fatalf("modified a non-streaming body: %s", out)
		}
	})
}

func BenchmarkMeterJSON(b *testing.B) {
	for _, tc := range meteringtest.Load(b, "testdata", 1) {
		if tc.Stream {
			continue
		}
		b.Run(tc.Name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.Input)))
			for b.Loop() {
				MeterJSON(tc.Input)
			}
		})
	}
	// A long completion: cost should be dominated by skipping the content.
	long := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("lorem ipsum dolor sit amet ", 4000) +
		`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":24000,"total_tokens":24019}}`)
	b.Run("long_100KB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(long)))
		for b.Loop() {
			MeterJSON(long)
		}
	})
}

func BenchmarkStreamMeter(b *testing.B) {
	for _, tc := range meteringtest.Load(b, "testdata", 1) {
		if !tc.Stream {
			continue
		}
		events := tc.Events()
		b.Run(tc.Name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.Input)))
			for b.Loop() {
				m := NewStreamMeter(false)
				for _, e := range events {
					m.Event([]byte(e.Name), e.Data)
				}
				_ = m.Usage()
			}
		})
	}
	// The first event of a stream: the model is still unknown, so it is
	// read whole (the first chunk of the proxy's streams).
	b.Run("first_event", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(firstChunk)))
		for b.Loop() {
			m := NewStreamMeter(false)
			m.Event(nil, firstChunk)
		}
	})
	// The include_usage chunk at the end of a chat stream.
	b.Run("usage_chunk", func(b *testing.B) {
		m := NewStreamMeter(false)
		m.Event(nil, firstChunk)
		b.ReportAllocs()
		b.SetBytes(int64(len(usageChunk)))
		for b.Loop() {
			m.Event(nil, usageChunk)
		}
	})
	// Per-event cost of the common case: a content delta that carries no usage.
	delta := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	b.Run("delta/usage_null", func(b *testing.B) {
		m := NewStreamMeter(true)
		m.Event(nil, delta) // learn the model first
		b.ReportAllocs()
		b.SetBytes(int64(len(delta)))
		for b.Loop() {
			m.Event(nil, delta)
		}
	})
}

// firstChunk and usageChunk are the first and the include_usage chunk of
// the fake provider's chat streams (what the proxy's benchmarks relay).
var (
	firstChunk = []byte(`{"id":"chatcmpl-TMEPTUOEDVERFUMC6X7H6ZMF4X","object":"chat.completion.chunk","created":1796570625,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_fakeprov01","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`)
	usageChunk = []byte(`{"id":"chatcmpl-TMEPTUOEDVERFUMC6X7H6ZMF4X","object":"chat.completion.chunk","created":1796570625,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_fakeprov01","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":19,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`)
)

func BenchmarkEnsureStreamUsage(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"` + strings.Repeat("You are helpful. ", 500) +
		`"},{"role":"user","content":"hi"}],"temperature":0.2,"stream":true}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		out, _, _ := EnsureStreamUsage(body)
		if bytes.Equal(out, body) {
			b.Fatal("not modified")
		}
	}
}
