package metering

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

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

// TestIsUsageOnlyChunkGoldenStreams checks that exactly the include_usage
// chunk of each golden OpenAI/Azure chat stream is recognised.
func TestIsUsageOnlyChunkGoldenStreams(t *testing.T) {
	for _, tc := range loadGoldenCases(t) {
		if !tc.stream || (tc.provider != OpenAI && tc.provider != Azure) {
			continue
		}
		n := 0
		for _, e := range parseSSE(tc.input) {
			if IsUsageOnlyChunk(e.data) {
				n++
			}
		}
		want := 0
		if tc.want.Known && !bytes.Contains(tc.input, []byte("response.")) {
			want = 1
		}
		if n != want {
			t.Errorf("%s: %d usage-only chunks, want %d", tc.name, n, want)
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

func TestRequestModelAndStream(t *testing.T) {
	tests := []struct {
		p      Provider
		body   string
		model  string
		stream bool
	}{
		{OpenAI, `{"model":"gpt-4o","messages":[{"role":"user","content":"{\"model\":\"x\",\"stream\":false}"}],"stream":true}`, "gpt-4o", true},
		{Azure, `{"messages":[{"role":"user","content":"hi"}],"stream":false}`, "", false},
		{Anthropic, `{"model":"claude-sonnet-4-20250514","max_tokens":1024,"stream":true,"messages":[]}`, "claude-sonnet-4-20250514", true},
		{Anthropic, `{"model":"claude-\u0033-haiku","max_tokens":1024,"messages":[]}`, "claude-3-haiku", false},
		{OpenAI, `{"model":"gpt-4o","stream":"true"}`, "gpt-4o", false},
		{OpenAI, `{"model":7,"stream":1}`, "", false},
		{OpenAI, `{"model":"a","metadata":{"model":"b","stream":true},"model":"c"}`, "c", false},
		{OpenAI, `{"model":"gpt-4o","stream":true`, "", false},
		{OpenAI, `[]`, "", false},
		{Google, `{"contents":[{"parts":[{"text":"hi"}]}],"model":"x","stream":true}`, "", false},
	}
	for _, tt := range tests {
		model, stream := RequestModelAndStream(tt.p, []byte(tt.body))
		if model != tt.model || stream != tt.stream {
			t.Errorf("RequestModelAndStream(%s, %s) = %q, %v; want %q, %v", tt.p, tt.body, model, stream, tt.model, tt.stream)
		}
	}
}

func TestGeminiModelAndStream(t *testing.T) {
	tests := []struct {
		path   string
		model  string
		stream bool
	}{
		{"/v1beta/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash", false},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent", "gemini-2.5-flash", true},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=abc", "gemini-2.5-flash", true},
		{"/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent", "gemini-2.5-pro", true},
		{"/v1beta/tunedModels/my-tuned-1:generateContent", "my-tuned-1", false},
		{"/v1beta/models/text-embedding-004:embedContent", "text-embedding-004", false},
		{"/v1beta/models/gemini-2.0-flash", "gemini-2.0-flash", false},
		{"v1beta/models/gemini-2.5-pro%3AstreamGenerateContent", "gemini-2.5-pro", true},
		{"v1beta/models/gemini%2D2.5-pro:generateContent", "gemini-2.5-pro", false},
		{"v1beta/models/x%2Fgemini-2.5-pro:generateContent", "gemini-2.5-pro", false},
		{"v1beta/models/bad%zz:generateContent", "bad%zz", false},
		{"", "", false},
		{"/", "", false},
	}
	for _, tt := range tests {
		model, stream := GeminiModelAndStream(tt.path)
		if model != tt.model || stream != tt.stream {
			t.Errorf("GeminiModelAndStream(%q) = %q, %v; want %q, %v", tt.path, model, stream, tt.model, tt.stream)
		}
	}
}
