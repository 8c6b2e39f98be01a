package metering

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// parseSSE splits an SSE byte stream into events following the WHATWG
// event-stream rules (CRLF/LF/CR line endings, comments, one optional space
// after the colon, multi-line data joined by "\n"). An event not terminated
// by a blank line is dropped, as a browser would.
func parseSSE(b []byte) []sseEvent {
	var (
		events []sseEvent
		name   string
		data   []byte
		inData bool
	)
	for len(b) > 0 {
		var line []byte
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			break // unterminated line: incomplete event, dropped
		}
		line = b[:i]
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			b = b[i+2:]
		} else {
			b = b[i+1:]
		}
		if len(line) == 0 {
			if inData {
				events = append(events, sseEvent{name: name, data: bytes.TrimSuffix(data, []byte("\n"))})
			}
			name, data, inData = "", nil, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			field, value = line[:c], line[c+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			data = append(append(data, value...), '\n')
			inData = true
		}
	}
	return events
}

func providerForDir(dir string) Provider {
	switch dir {
	case "openai":
		return OpenAI
	case "azure":
		return Azure
	case "anthropic":
		return Anthropic
	case "google":
		return Google
	}
	return ""
}

// golden is the expected result stored next to each testdata input.
type golden struct {
	Model            string `json:"model"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	TotalTokens      int64  `json:"total_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	Known            bool   `json:"known"`
	Done             *bool  `json:"done,omitempty"`
	Events           *int   `json:"events,omitempty"`
}

func (g golden) usage() Usage {
	return Usage{Model: g.Model, PromptTokens: g.PromptTokens, CompletionTokens: g.CompletionTokens,
		TotalTokens: g.TotalTokens, CachedTokens: g.CachedTokens, Known: g.Known}
}

type goldenCase struct {
	name     string // e.g. "openai/chat_stream.sse"
	provider Provider
	stream   bool
	input    []byte
	want     golden
}

func loadGoldenCases(t testing.TB) []goldenCase {
	t.Helper()
	var cases []goldenCase
	for _, pattern := range []string{"testdata/*/*.json", "testdata/*/*.sse"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			dir := filepath.Base(filepath.Dir(f))
			p := providerForDir(dir)
			if p == "" {
				t.Fatalf("%s: unknown provider directory %q", f, dir)
			}
			input, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			gb, err := os.ReadFile(strings.TrimSuffix(f, filepath.Ext(f)) + ".golden")
			if err != nil {
				t.Fatalf("%s: missing golden file: %v", f, err)
			}
			var want golden
			dec := json.NewDecoder(bytes.NewReader(gb))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&want); err != nil {
				t.Fatalf("%s.golden: %v", f, err)
			}
			stream := filepath.Ext(f) == ".sse"
			if stream != (want.Done != nil && want.Events != nil) {
				t.Fatalf("%s.golden: done/events must be given exactly for .sse inputs", f)
			}
			cases = append(cases, goldenCase{
				name: dir + "/" + filepath.Base(f), provider: p, stream: stream, input: input, want: want,
			})
		}
	}
	if len(cases) < 20 {
		t.Fatalf("found only %d golden cases", len(cases))
	}
	return cases
}

func TestGolden(t *testing.T) {
	for _, tc := range loadGoldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.stream {
				if got := FromJSON(tc.provider, tc.input); got != tc.want.usage() {
					t.Errorf("FromJSON:\n got  %+v\n want %+v", got, tc.want.usage())
				}
				return
			}
			events := parseSSE(tc.input)
			m := NewStreamMeter(tc.provider)
			for _, ev := range events {
				m.Event(ev.name, ev.data)
			}
			if got := m.Usage(); got != tc.want.usage() {
				t.Errorf("Usage:\n got  %+v\n want %+v", got, tc.want.usage())
			}
			if m.Done() != *tc.want.Done {
				t.Errorf("Done = %v, want %v", m.Done(), *tc.want.Done)
			}
			if m.Events() != *tc.want.Events {
				t.Errorf("Events = %d, want %d", m.Events(), *tc.want.Events)
			}
		})
	}
}

// TestAzureUsesOpenAIFormat runs the OpenAI goldens through the Azure provider.
func TestAzureUsesOpenAIFormat(t *testing.T) {
	for _, tc := range loadGoldenCases(t) {
		if tc.provider != OpenAI {
			continue
		}
		var got, want Usage
		if tc.stream {
			a, o := NewStreamMeter(Azure), NewStreamMeter(OpenAI)
			for _, ev := range parseSSE(tc.input) {
				a.Event(ev.name, ev.data)
				o.Event(ev.name, ev.data)
			}
			got, want = a.Usage(), o.Usage()
		} else {
			got, want = FromJSON(Azure, tc.input), FromJSON(OpenAI, tc.input)
		}
		if got != want {
			t.Errorf("%s: Azure %+v != OpenAI %+v", tc.name, got, want)
		}
	}
}

// TestStreamPrefixNotDone cuts every complete golden stream after each event:
// no proper prefix may report Done, and none may panic.
func TestStreamPrefixNotDone(t *testing.T) {
	for _, tc := range loadGoldenCases(t) {
		if !tc.stream || !*tc.want.Done {
			continue
		}
		events := parseSSE(tc.input)
		for n := 0; n < len(events); n++ {
			m := NewStreamMeter(tc.provider)
			for _, ev := range events[:n] {
				m.Event(ev.name, ev.data)
			}
			if m.Done() {
				t.Errorf("%s: Done after %d of %d events", tc.name, n, len(events))
			}
			if m.Events() != n {
				t.Errorf("%s: Events = %d after %d events", tc.name, m.Events(), n)
			}
			if u := m.Usage(); u.Known && u.TotalTokens < u.PromptTokens {
				t.Errorf("%s: inconsistent usage %+v", tc.name, u)
			}
		}
	}
}

func TestFromJSONEdgeCases(t *testing.T) {
	unknown := func(model string) Usage { return Usage{Model: model} }
	tests := []struct {
		name string
		p    Provider
		body string
		want Usage
	}{
		{"empty body", OpenAI, ``, unknown("")},
		{"garbage", OpenAI, `<html>502 Bad Gateway</html>`, unknown("")},
		{"truncated", OpenAI, `{"model":"gpt-4o","usage":{"prompt_tokens":5,"completion_tokens":`, unknown("")},
		{"top-level string", Anthropic, `"usage"`, unknown("")},
		{"top-level array for openai", OpenAI, `[{"usage":{"prompt_tokens":1}}]`, unknown("")},
		{"usage missing", OpenAI, `{"model":"m"}`, unknown("m")},
		{"usage empty object", OpenAI, `{"model":"m","usage":{}}`, unknown("m")},
		{"only total reported", OpenAI, `{"model":"m","usage":{"total_tokens":7}}`, unknown("m")},
		{"prompt only", OpenAI, `{"model":"m","usage":{"prompt_tokens":7}}`,
			Usage{Model: "m", PromptTokens: 7, TotalTokens: 7, Known: true}},
		{"completion only", OpenAI, `{"model":"m","usage":{"completion_tokens":3}}`,
			Usage{Model: "m", CompletionTokens: 3, TotalTokens: 3, Known: true}},
		{"explicit zero is known", OpenAI, `{"model":"m","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`,
			Usage{Model: "m", Known: true}},
		{"max int64", OpenAI, `{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":0}}`,
			Usage{PromptTokens: math.MaxInt64, TotalTokens: math.MaxInt64, Known: true}},
		{"sum saturates", OpenAI, `{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":5}}`,
			Usage{PromptTokens: math.MaxInt64, CompletionTokens: 5, TotalTokens: math.MaxInt64, Known: true}},
		{"beyond int64", OpenAI, `{"model":"m","usage":{"prompt_tokens":9223372036854775808,"completion_tokens":1}}`, unknown("m")},
		{"huge digits", OpenAI, `{"usage":{"prompt_tokens":1` + strings.Repeat("0", 400) + `,"completion_tokens":1}}`, unknown("")},
		{"huge exponent", OpenAI, `{"usage":{"prompt_tokens":1e400,"completion_tokens":1}}`, unknown("")},
		{"exponent integral", OpenAI, `{"usage":{"prompt_tokens":1e3,"completion_tokens":2.0}}`,
			Usage{PromptTokens: 1000, CompletionTokens: 2, TotalTokens: 1002, Known: true}},
		{"fractional", OpenAI, `{"usage":{"prompt_tokens":1.5,"completion_tokens":2}}`, unknown("")},
		{"negative", OpenAI, `{"usage":{"prompt_tokens":-1,"completion_tokens":2}}`, unknown("")},
		{"bad cached makes unknown", OpenAI, `{"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":-4}}}`, unknown("")},
		{"string number (proto3 int64)", Google, `{"usageMetadata":{"promptTokenCount":"12","candidatesTokenCount":"3"}}`,
			Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15, Known: true}},
		{"non-numeric string", OpenAI, `{"usage":{"prompt_tokens":"many","completion_tokens":2}}`, unknown("")},
		{"object as count", OpenAI, `{"usage":{"prompt_tokens":{"n":1},"completion_tokens":2}}`, unknown("")},
		{"null counters", OpenAI, `{"usage":{"prompt_tokens":null,"completion_tokens":null}}`, unknown("")},
		{"usage wrong type", OpenAI, `{"model":"m","usage":"lots"}`, unknown("m")},
		{"model wrong type tolerated", OpenAI, `{"model":42,"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`,
			Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, Known: true}},
		{"escaped model", Anthropic, `{"model":"claude-\u0033","usage":{"input_tokens":1,"output_tokens":1}}`,
			Usage{Model: "claude-3", PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, Known: true}},
		{"anthropic cache only", Anthropic, `{"usage":{"cache_read_input_tokens":100,"output_tokens":0}}`,
			Usage{PromptTokens: 100, TotalTokens: 100, CachedTokens: 100, Known: true}},
		{"anthropic bad cache write", Anthropic, `{"usage":{"input_tokens":3,"cache_creation_input_tokens":"x","output_tokens":1}}`, unknown("")},
		{"anthropic sum saturates", Anthropic, `{"usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9223372036854775807,"output_tokens":1}}`,
			Usage{PromptTokens: math.MaxInt64, CompletionTokens: 1, TotalTokens: math.MaxInt64, CachedTokens: math.MaxInt64, Known: true}},
		{"gemini no total", Google, `{"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":5,"thoughtsTokenCount":6},"modelVersion":"g"}`,
			Usage{Model: "g", PromptTokens: 4, CompletionTokens: 11, TotalTokens: 15, Known: true}},
		{"gemini thoughts only", Google, `{"usageMetadata":{"thoughtsTokenCount":6}}`,
			Usage{CompletionTokens: 6, TotalTokens: 6, Known: true}},
		{"gemini empty array", Google, `[]`, unknown("")},
		{"gemini array without usage", Google, `[{"modelVersion":"g"},{"candidates":[]}]`, unknown("g")},
		{"gemini array usage in middle", Google, `[{"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1}},{"modelVersion":"g"}]`,
			Usage{Model: "g", PromptTokens: 2, CompletionTokens: 1, TotalTokens: 3, Known: true}},
		{"gemini array truncated", Google, `[{"usageMetadata":{"promptTokenCount":2}},{"usageMeta`, unknown("")},
		{"gemini array of garbage", Google, `[1,"x",null,{"usageMetadata":{"promptTokenCount":2}}]`,
			Usage{PromptTokens: 2, TotalTokens: 2, Known: true}},
		{"unknown provider", Provider("cohere"), `{"usage":{"prompt_tokens":1}}`, unknown("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromJSON(tt.p, []byte(tt.body)); got != tt.want {
				t.Errorf("FromJSON(%s, %s)\n got  %+v\n want %+v", tt.p, tt.body, got, tt.want)
			}
		})
	}
}

func feed(p Provider, events ...sseEvent) *StreamMeter {
	m := NewStreamMeter(p)
	for _, ev := range events {
		m.Event(ev.name, ev.data)
	}
	return m
}

func ev(name, data string) sseEvent { return sseEvent{name: name, data: []byte(data)} }

func TestStreamEdgeCases(t *testing.T) {
	tests := []struct {
		name   string
		p      Provider
		events []sseEvent
		want   Usage
		done   bool
		count  int
	}{
		{
			name: "openai last usage chunk wins",
			p:    OpenAI,
			events: []sseEvent{
				ev("", `{"model":"m","choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`),
				ev("", `{"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}`),
				ev("", ` [DONE] `),
			},
			want: Usage{Model: "m", PromptTokens: 5, CompletionTokens: 4, TotalTokens: 9, Known: true}, done: true, count: 3,
		},
		{
			name: "openai usage with spaces and escaped model",
			p:    OpenAI,
			events: []sseEvent{
				ev("", `{"model" : "gpt-\u0034o", "usage" :
 {"prompt_tokens" : 2 , "completion_tokens" : 3}}`),
			},
			want: Usage{Model: "gpt-4o", PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5, Known: true}, count: 1,
		},
		{
			name: "openai error event mid-stream",
			p:    OpenAI,
			events: []sseEvent{
				ev("", `{"model":"m","choices":[{"delta":{"content":"a"}}]}`),
				ev("", `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`),
			},
			want: Usage{Model: "m"}, count: 2,
		},
		{
			name: "openai garbage and empty data",
			p:    OpenAI,
			events: []sseEvent{
				ev("", `{"usage":{"prompt_tokens":1`),
				ev("", ``),
				ev("", `not json "usage": 5`),
			},
			want: Usage{}, count: 2,
		},
		{
			name: "responses incomplete ends with usage",
			p:    OpenAI,
			events: []sseEvent{
				ev("response.incomplete", `{"type":"response.incomplete","response":{"model":"o3","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":10,"output_tokens":100,"total_tokens":110,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":100}}}}`),
			},
			want: Usage{Model: "o3", PromptTokens: 10, CompletionTokens: 100, TotalTokens: 110, Known: true}, done: true, count: 1,
		},
		{
			name: "responses failed unnamed",
			p:    Azure,
			events: []sseEvent{
				ev("", `{"type":"response.failed","response":{"model":"gpt-4.1","status":"failed","error":{"code":"server_error","message":"x"},"usage":null}}`),
			},
			want: Usage{Model: "gpt-4.1"}, done: true, count: 1,
		},
		{
			name: "responses event text mentioning completed is not terminal",
			p:    OpenAI,
			events: []sseEvent{
				ev("", `{"type":"response.created","response":{"model":"m","usage":null}}`),
				ev("", `{"type":"response.output_text.delta","delta":"\"response.completed\""}`),
			},
			want: Usage{Model: "m"}, count: 2,
		},
		{
			name: "anthropic null counters in delta keep start values",
			p:    Anthropic,
			events: []sseEvent{
				ev("message_start", `{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":100,"cache_read_input_tokens":50,"cache_creation_input_tokens":0,"output_tokens":1}}}`),
				ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":null,"cache_read_input_tokens":null,"output_tokens":30}}`),
				ev("message_stop", `{"type":"message_stop"}`),
			},
			want: Usage{Model: "claude", PromptTokens: 150, CompletionTokens: 30, TotalTokens: 180, CachedTokens: 50, Known: true}, done: true, count: 3,
		},
		{
			name: "anthropic delta only (missed start) is still known",
			p:    Anthropic,
			events: []sseEvent{
				ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":30}}`),
			},
			want: Usage{CompletionTokens: 30, TotalTokens: 30, Known: true}, count: 1,
		},
		{
			name: "anthropic text mentioning usage is ignored",
			p:    Anthropic,
			events: []sseEvent{
				ev("message_start", `{"type":"message_start","message":{"model":"claude","usage":{"input_tokens":9,"output_tokens":1}}}`),
				ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\"usage\": {\"output_tokens\": 99999}"}}`),
				ev("", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"usage\":{\"output_tokens\":7}}"}}`),
			},
			want: Usage{Model: "claude", PromptTokens: 9, CompletionTokens: 1, TotalTokens: 10, Known: true}, count: 3,
		},
		{
			name: "anthropic unnamed message_stop",
			p:    Anthropic,
			events: []sseEvent{
				ev("", `{"type":"message_stop"}`),
			},
			want: Usage{}, done: true, count: 1,
		},
		{
			name: "gemini last usage wins even if smaller",
			p:    Google,
			events: []sseEvent{
				ev("", `{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":50,"totalTokenCount":60},"modelVersion":"g"}`),
				ev("", `{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":15}}`),
			},
			want: Usage{Model: "g", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Known: true}, done: true, count: 2,
		},
		{
			name: "gemini chunk without usage keeps previous",
			p:    Google,
			events: []sseEvent{
				ev("", `{"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":15},"modelVersion":"g"}`),
				ev("", `{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"MAX_TOKENS"}]}`),
			},
			want: Usage{Model: "g", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Known: true}, done: true, count: 2,
		},
		{
			name: "gemini empty finishReason is not an end",
			p:    Google,
			events: []sseEvent{
				ev("", `{"candidates":[{"index":0},{"index":1}],"usageMetadata":{"promptTokenCount":1}}`),
				ev("", `{"candidates":[{"finishReason":""}],"usageMetadata":{"promptTokenCount":2}}`),
			},
			want: Usage{PromptTokens: 2, TotalTokens: 2, Known: true}, count: 2,
		},
		{
			name: "gemini error chunk",
			p:    Google,
			events: []sseEvent{
				ev("", `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`),
			},
			want: Usage{}, count: 1,
		},
		{
			name:   "unknown provider counts events only",
			p:      Provider("mistral"),
			events: []sseEvent{ev("", `{"usage":{"prompt_tokens":1}}`), ev("", `[DONE]`)},
			want:   Usage{}, count: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := feed(tt.p, tt.events...)
			if got := m.Usage(); got != tt.want {
				t.Errorf("Usage\n got  %+v\n want %+v", got, tt.want)
			}
			if m.Done() != tt.done {
				t.Errorf("Done = %v, want %v", m.Done(), tt.done)
			}
			if m.Events() != tt.count {
				t.Errorf("Events = %d, want %d", m.Events(), tt.count)
			}
		})
	}
}

// TestStreamMeterDataNotRetained checks that the meter copies what it keeps:
// callers reuse their read buffers between events.
func TestStreamMeterDataNotRetained(t *testing.T) {
	buf := []byte(`{"choices":[],"model":"gpt-4o","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`)
	m := NewStreamMeter(OpenAI)
	m.Event("", buf)
	for i := range buf {
		buf[i] = 'x'
	}
	want := Usage{Model: "gpt-4o", PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7, Known: true}
	if got := m.Usage(); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestParseSSE(t *testing.T) {
	in := "event: a\r\ndata: 1\r\ndata:2\r\n\r\n: comment\n\nid: 7\nevent: b\ndata\n\nretry: 10\n\ndata: tail"
	got := parseSSE([]byte(in))
	want := []sseEvent{{"a", []byte("1\n2")}, {"b", []byte("")}}
	if len(got) != len(want) {
		t.Fatalf("got %d events: %q", len(got), got)
	}
	for i := range want {
		if got[i].name != want[i].name || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("event %d = %q/%q, want %q/%q", i, got[i].name, got[i].data, want[i].name, want[i].data)
		}
	}
}

// TestGeminiStreamMatchesFromJSON checks that the allocation-free walker used
// for Gemini stream chunks agrees with the encoding/json path of FromJSON.
func TestGeminiStreamMatchesFromJSON(t *testing.T) {
	var bodies [][]byte
	for _, tc := range loadGoldenCases(t) {
		if tc.provider != Google {
			continue
		}
		if tc.stream {
			for _, e := range parseSSE(tc.input) {
				bodies = append(bodies, e.data)
			}
			continue
		}
		if i := skipWS(tc.input, 0); i < len(tc.input) && tc.input[i] == '[' {
			var elems []json.RawMessage
			if err := json.Unmarshal(tc.input, &elems); err != nil {
				t.Fatal(err)
			}
			for _, e := range elems {
				bodies = append(bodies, e)
			}
			continue
		}
		bodies = append(bodies, tc.input)
	}
	for _, s := range []string{
		`{"usageMetadata":null,"modelVersion":"g"}`,
		`{"usageMetadata":[],"modelVersion":"g"}`,
		`{"usageMetadata":{"promptTokenCount":"7","candidatesTokenCount":1.0e1}}`,
		`{"usageMetadata":{"promptTokenCount":-7,"candidatesTokenCount":1}}`,
		`{"usageMetadata":{"promptTokenCount":1,"unknown":{"promptTokenCount":99}}}`,
		`{"usag\u0065Metadata":{"promptTokenCount":3},"modelVersion":"g\u00e9"}`,
		`{"promptFeedback":{"blockReason":"OTHER"},"usageMetadata":{"promptTokenCount":3}}`,
		`{"candidates":[],"usageMetadata":{"promptTokenCount":3}}`,
		"\t{ \"usageMetadata\" : { \"promptTokenCount\" : 3 } }\n",
	} {
		bodies = append(bodies, []byte(s))
	}
	for _, b := range bodies {
		m := NewStreamMeter(Google)
		m.Event("", b)
		if got, want := m.Usage(), FromJSON(Google, b); got != want {
			t.Errorf("stream %+v != FromJSON %+v for %s", got, want, b)
		}
	}
}
