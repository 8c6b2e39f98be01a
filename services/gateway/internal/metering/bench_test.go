package metering

import (
	"bytes"
	"strings"
	"testing"
)

func BenchmarkFromJSON(b *testing.B) {
	for _, tc := range loadGoldenCases(b) {
		if tc.stream {
			continue
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.input)))
			for b.Loop() {
				FromJSON(tc.provider, tc.input)
			}
		})
	}
	// A long completion: cost should be dominated by skipping the content.
	long := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("lorem ipsum dolor sit amet ", 4000) +
		`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":24000,"total_tokens":24019}}`)
	b.Run("openai/long_100KB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(long)))
		for b.Loop() {
			FromJSON(OpenAI, long)
		}
	})
}

func BenchmarkStreamMeter(b *testing.B) {
	for _, tc := range loadGoldenCases(b) {
		if !tc.stream {
			continue
		}
		events := parseSSE(tc.input)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.input)))
			for b.Loop() {
				m := NewStreamMeter(tc.provider)
				for _, e := range events {
					m.Event(e.name, e.data)
				}
				_ = m.Usage()
			}
		})
	}
	// Per-event cost of the common case: a content delta that carries no usage.
	for _, c := range []struct {
		name string
		p    Provider
		ev   sseEvent
	}{
		{"delta/openai_usage_null", OpenAI, ev("", `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}`)},
		{"delta/anthropic", Anthropic, ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)},
		{"delta/gemini", Google, ev("", `{"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":10,"totalTokenCount":10},"modelVersion":"gemini-2.5-flash","responseId":"abc"}`)},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := NewStreamMeter(c.p)
			m.Event(c.ev.name, c.ev.data) // learn the model first
			b.ReportAllocs()
			b.SetBytes(int64(len(c.ev.data)))
			for b.Loop() {
				m.Event(c.ev.name, c.ev.data)
			}
		})
	}
}

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
