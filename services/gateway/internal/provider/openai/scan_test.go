package openai

import (
	"testing"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/metering/meteringtest"
)

// scanTwoPass is the decode chunk.scan replaced (validate, then walk the
// event again), kept as the reference of FuzzChunkScan.
func (c *chunk) scanTwoPass(data []byte, model *string) bool {
	if !jsonscan.Valid(data) {
		return false
	}
	sink := metering.StringSink{Dst: model}
	jsonscan.EachMember(data, func(key, val []byte) {
		switch string(key) {
		case "type":
			c.typ = readEventType(val)
		case "choices":
			c.choices.read(val)
		case "model":
			_ = sink.UnmarshalJSON(val)
		case "usage":
			jsonscan.EachMember(val, c.usage.Member)
		case "response":
			jsonscan.EachMember(val, func(k, v []byte) {
				switch string(k) {
				case "model":
					_ = sink.UnmarshalJSON(v)
				case "usage":
					jsonscan.EachMember(v, c.responseUsage.Member)
				}
			})
		}
	})
	return true
}

// scanCases are the edges of the one-pass scan: the model is taken only
// from an event that proves valid to its end, the last model a valid event
// names wins (empty and non-string names are skipped), keys with escapes
// match by their decoded name.
var scanCases = []meteringtest.StreamCase{
	{
		Name: "model of an event invalid after it is not taken",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"model":"m2","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}} x`),
			meteringtest.Ev("", `{"model":"m3","usage":{"prompt_tokens":1,"completion_tokens":`),
		},
		Want: metering.Usage{},
	},
	{
		Name: "invalid event after the model is known changes nothing",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"model":"m","choices":[{"delta":{"content":"a"}}],"usage":null}`),
			meteringtest.Ev("", `{"model":"other","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}`),
		},
		Want: metering.Usage{Model: "m"},
	},
	{
		Name: "last non-empty model wins",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"model":"a","model":"","model":7,"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}`),
		},
		Want: metering.Usage{Model: "a", PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, Known: true},
	},
	{
		Name: "response model after the top-level one wins",
		Events: []meteringtest.Event{
			meteringtest.Ev("response.completed", `{"model":"top","response":{"model":"inner","usage":{"input_tokens":1,"output_tokens":2}}}`),
		},
		Want: metering.Usage{Model: "inner", PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, Known: true}, Done: true,
	},
	{
		Name: "top-level model after the response wins",
		Events: []meteringtest.Event{
			meteringtest.Ev("response.completed", `{"response":{"model":"inner","usage":{"input_tokens":1,"output_tokens":2}},"model":"top"}`),
		},
		Want: metering.Usage{Model: "top", PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, Known: true}, Done: true,
	},
	{
		Name: "escaped keys and model",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"mod\u0065l":"gpt-\u0034o","ch\u006fices":[],"us\u0061ge":{"prompt_tokens":2,"completion_tokens":3}}`),
		},
		Want: metering.Usage{Model: "gpt-4o", PromptTokens: 2, CompletionTokens: 3, TotalTokens: 5, Known: true},
	},
	{
		Name: "nested model is not the event's",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"choices":[{"model":"nested","delta":{}}],"usage":{"model":"u","prompt_tokens":1,"completion_tokens":1}}`),
		},
		Want: metering.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2, Known: true},
	},
	{
		Name: "unnamed terminal event with trailing garbage is not terminal",
		Events: []meteringtest.Event{
			meteringtest.Ev("", `{"type":"response.completed","response":{"model":"m","usage":{"input_tokens":1,"output_tokens":2}}}}`),
		},
		Want: metering.Usage{},
	},
}

func TestStreamScanEdgeCases(t *testing.T) { meteringtest.RunStreamCases(t, format, scanCases) }

// FuzzChunkScan: the one-pass scan reads every event as the two-pass decode
// did: same validity, same chunk, same model (and the model untouched by an
// invalid event).
func FuzzChunkScan(f *testing.F) {
	for _, tc := range meteringtest.Load(f, "testdata", 1) {
		if tc.Stream {
			for _, e := range tc.Events() {
				f.Add(e.Data)
			}
		} else {
			f.Add(tc.Input)
		}
	}
	for _, c := range append(append([]meteringtest.StreamCase(nil), scanCases...), streamCases...) {
		for _, e := range c.Events {
			f.Add(e.Data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, prev := range []string{"", "prev"} {
			var got, want chunk
			gotModel, wantModel := prev, prev
			gotOK := got.scan(data, &gotModel)
			wantOK := want.scanTwoPass(data, &wantModel)
			if gotOK != wantOK {
				t.Fatalf("scan(%q) ok=%v, two-pass %v", data, gotOK, wantOK)
			}
			if gotModel != wantModel {
				t.Fatalf("scan(%q) model %q, two-pass %q", data, gotModel, wantModel)
			}
			if gotOK && got != want {
				t.Fatalf("scan(%q)\n got  %+v\n want %+v", data, got, want)
			}
		}
	})
}
