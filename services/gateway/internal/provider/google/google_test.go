package google

import (
	"encoding/json"
	"testing"
	"trueportai/services/gateway/internal/provider"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/metering/meteringtest"
)

var p = New("https://generativelanguage.test/v1beta")

func TestGolden(t *testing.T)              { meteringtest.RunGolden(t, p, "testdata", 10) }
func TestStreamPrefixNotDone(t *testing.T) { meteringtest.RunPrefixNotDone(t, p, "testdata") }
func FuzzMeter(f *testing.F)               { meteringtest.Fuzz(f, p, "testdata") }
func TestMeterJSONEdgeCases(t *testing.T)  { meteringtest.RunJSONCases(t, p, jsonCases) }
func TestStreamEdgeCases(t *testing.T)     { meteringtest.RunStreamCases(t, p, streamCases) }

var jsonCases = []meteringtest.JSONCase{
	{Name: "string number (proto3 int64)", Body: `{"usageMetadata":{"promptTokenCount":"12","candidatesTokenCount":"3"}}`,
		Want: metering.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15, Known: true}},
	{Name: "gemini no total", Body: `{"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":5,"thoughtsTokenCount":6},"modelVersion":"g"}`,
		Want: metering.Usage{Model: "g", PromptTokens: 4, CompletionTokens: 11, TotalTokens: 15, Known: true}},
	{Name: "gemini thoughts only", Body: `{"usageMetadata":{"thoughtsTokenCount":6}}`,
		Want: metering.Usage{CompletionTokens: 6, TotalTokens: 6, Known: true}},
	{Name: "gemini empty array", Body: `[]`, Want: meteringtest.Unknown("")},
	{Name: "gemini array without usage", Body: `[{"modelVersion":"g"},{"candidates":[]}]`, Want: meteringtest.Unknown("g")},
	{Name: "gemini array usage in middle", Body: `[{"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1}},{"modelVersion":"g"}]`,
		Want: metering.Usage{Model: "g", PromptTokens: 2, CompletionTokens: 1, TotalTokens: 3, Known: true}},
	{Name: "gemini array truncated", Body: `[{"usageMetadata":{"promptTokenCount":2}},{"usageMeta`, Want: meteringtest.Unknown("")},
	{Name: "gemini array of garbage", Body: `[1,"x",null,{"usageMetadata":{"promptTokenCount":2}}]`,
		Want: metering.Usage{PromptTokens: 2, TotalTokens: 2, Known: true}},
}

var streamCases = []meteringtest.StreamCase{
	{
		Name: "gemini last usage wins even if smaller",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":50,"totalTokenCount":60},"modelVersion":"g"}`),
			meteringtest.Ev("", `{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":15}}`),
		},
		Want: metering.Usage{Model: "g", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Known: true}, Done: true,
	},
	{
		Name: "gemini chunk without usage keeps previous",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"totalTokenCount":15},"modelVersion":"g"}`),
			meteringtest.Ev("", `{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"MAX_TOKENS"}]}`),
		},
		Want: metering.Usage{Model: "g", PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Known: true}, Done: true,
	},
	{
		Name: "gemini empty finishReason is not an end",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"candidates":[{"index":0},{"index":1}],"usageMetadata":{"promptTokenCount":1}}`),
			meteringtest.Ev("", `{"candidates":[{"finishReason":""}],"usageMetadata":{"promptTokenCount":2}}`),
		},
		Want: metering.Usage{PromptTokens: 2, TotalTokens: 2, Known: true},
	},
	{
		Name: "gemini error chunk",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`),
		},
		Want: metering.Usage{},
	},
}

// TestGeminiStreamMatchesFromJSON checks that the allocation-free walker used
// for Gemini stream chunks agrees with the encoding/json path of FromJSON.
func TestGeminiStreamMatchesFromJSON(t *testing.T) {
	var bodies [][]byte
	for _, tc := range meteringtest.Load(t, "testdata", 10) {
		if tc.Stream {
			for _, e := range tc.Events() {
				bodies = append(bodies, e.Data)
			}
			continue
		}
		if i := jsonscan.SkipWS(tc.Input, 0); i < len(tc.Input) && tc.Input[i] == '[' {
			var elems []json.RawMessage
			if err := json.Unmarshal(tc.Input, &elems); err != nil {
				t.Fatal(err)
			}
			for _, e := range elems {
				bodies = append(bodies, e)
			}
			continue
		}
		bodies = append(bodies, tc.Input)
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
		m := new(StreamMeter)
		m.Event(nil, b)
		if got, want := m.Usage(), MeterJSON(b); got != want {
			t.Errorf("stream %+v != FromJSON %+v for %s", got, want, b)
		}
	}
}

func TestModelAndStream(t *testing.T) {
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
		model, stream := ModelAndStream(tt.path)
		if model != tt.model || stream != tt.stream {
			t.Errorf("ModelAndStream(%q) = %q, %v; want %q, %v", tt.path, model, stream, tt.model, tt.stream)
		}
	}
}

func TestRouteReadsModelFromPath(t *testing.T) {
	tg, err := p.Route("models/gemini-2.5-flash:streamGenerateContent")
	if err != nil || tg.Model != "gemini-2.5-flash" || !tg.Stream {
		t.Fatalf("%+v %v", tg, err)
	}
	if r := p.Inspect(&tg, provider.Credential{}, []byte(`{"model":"other","stream":false}`)); r.Model != "gemini-2.5-flash" || !r.Stream {
		t.Fatalf("the body overrode the path: %+v", r)
	}
}

func BenchmarkStreamDelta(b *testing.B) {
	delta := []byte(`{"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":10,"totalTokenCount":10},"modelVersion":"gemini-2.5-flash","responseId":"abc"}`)
	m := new(StreamMeter)
	m.Event(nil, delta)
	b.ReportAllocs()
	b.SetBytes(int64(len(delta)))
	for b.Loop() {
		m.Event(nil, delta)
	}
}
