package metering

import (
	"bytes"
	"encoding/json"
	"testing"
)

// fuzzProviders maps a fuzzer byte to a provider, including an unknown one.
func fuzzProvider(b uint8) Provider {
	switch b % 5 {
	case 0:
		return OpenAI
	case 1:
		return Azure
	case 2:
		return Anthropic
	case 3:
		return Google
	}
	return Provider("unknown")
}

func providerIndex(p Provider) uint8 {
	switch p {
	case OpenAI:
		return 0
	case Azure:
		return 1
	case Anthropic:
		return 2
	case Google:
		return 3
	}
	return 4
}

// checkUsage asserts the invariants every Usage must satisfy.
func checkUsage(t *testing.T, u Usage) {
	t.Helper()
	if !u.Known {
		if u.PromptTokens != 0 || u.CompletionTokens != 0 || u.TotalTokens != 0 || u.CachedTokens != 0 {
			t.Fatalf("unknown usage carries counts: %+v", u)
		}
		return
	}
	if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.TotalTokens < 0 || u.CachedTokens < 0 {
		t.Fatalf("negative counts: %+v", u)
	}
}

func FuzzFromJSON(f *testing.F) {
	for _, tc := range loadGoldenCases(f) {
		if !tc.stream {
			f.Add(providerIndex(tc.provider), tc.input)
		}
	}
	f.Add(uint8(0), []byte(`{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":9223372036854775807}}`))
	f.Add(uint8(2), []byte(`{"usage":{"input_tokens":1e308,"output_tokens":"12"}}`))
	f.Add(uint8(3), []byte(`[{"usageMetadata":{"promptTokenCount":1}},`))
	f.Fuzz(func(t *testing.T, pi uint8, body []byte) {
		orig := bytes.Clone(body)
		u := FromJSON(fuzzProvider(pi), body)
		checkUsage(t, u)
		if !bytes.Equal(body, orig) {
			t.Fatal("FromJSON modified its input")
		}
		if u.Known && !json.Valid(body) {
			t.Fatalf("usage known from invalid JSON: %+v", u)
		}
		// The request-side helpers share the scanner; exercise them too.
		IsUsageOnlyChunk(body)
		RequestModelAndStream(fuzzProvider(pi), body)
		out, _, err := EnsureStreamUsage(body)
		if err != nil && !bytes.Equal(out, body) {
			t.Fatal("EnsureStreamUsage changed the body on error")
		}
	})
}

func FuzzStreamMeter(f *testing.F) {
	for _, tc := range loadGoldenCases(f) {
		if tc.stream {
			f.Add(providerIndex(tc.provider), tc.input)
		}
	}
	f.Add(uint8(0), []byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1e999}}\n\ndata: [DONE]\n\n"))
	f.Add(uint8(2), []byte("event: message_delta\ndata: {\"usage\":{\"output_tokens\":-1}}\n\n"))
	f.Add(uint8(3), []byte("data: {\"candidates\":[{\"finishReason\":\"STOP\"}],\"usageMetadata\":\n\n"))
	f.Fuzz(func(t *testing.T, pi uint8, stream []byte) {
		p := fuzzProvider(pi)
		events := parseSSE(stream)
		m := NewStreamMeter(p)
		want := 0
		for i, e := range events {
			m.Event(e.name, e.data)
			if len(e.data) > 0 {
				want++
			}
			if i%4 == 0 {
				checkUsage(t, m.Usage())
			}
			IsUsageOnlyChunk(e.data)
		}
		checkUsage(t, m.Usage())
		if m.Events() != want {
			t.Fatalf("Events = %d, want %d", m.Events(), want)
		}
		// Raw bytes as a single event, unnamed and with a recognised name.
		m = NewStreamMeter(p)
		m.Event("", stream)
		m.Event("message_start", stream)
		m.Event("message_delta", stream)
		m.Event("response.completed", stream)
		checkUsage(t, m.Usage())
	})
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
		if _, stream := RequestModelAndStream(OpenAI, out); !stream {
			t.Fatalf("modified a non-streaming body: %s", out)
		}
	})
}

// FuzzValidJSON: validJSON agrees with json.Valid on every input.
func FuzzValidJSON(f *testing.F) {
	for _, tc := range loadGoldenCases(f) {
		f.Add(tc.input)
	}
	for _, s := range []string{`{}`, `[]`, `""`, `-0.5e+3`, `01`, `1.`, `"\u12"`, `"\ud800"`, "\"a\x01\"", `{"a":}`, `[1,]`, `{"a" 1}`,
		`tru`, `nulll`, ` {"a":[1,{"b":null}]} `, `{"a":1,}`, `[[[[[]]]]]`, `"\/"`, `"\x"`, `1e`, `-`, `{"k":"v"}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}
