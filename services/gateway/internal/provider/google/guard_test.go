package google

import (
	"testing"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/providertest"
)

// ParseStreamEvent finds every part's text of every candidate on the
// candidate's channel, whatever the member order, repeats and escapes, and
// nothing in a document that is not valid JSON.
func TestParseStreamEvent(t *testing.T) {
	const other, text, neutral = provider.EventOther, provider.EventText, provider.EventNeutral
	c := providertest.Case
	providertest.RunStreamTextCases(t, func(data []byte, ev *provider.StreamEvent) { (&Provider{}).ParseStreamEvent(nil, data, ev) }, []providertest.StreamTextCase{
		c("text", `{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}],"modelVersion":"m"}`, text, false, "[0:Hi]"),
		c("index after the content", `{"candidates":[{"content":{"parts":[{"text":"a"},{"text":"b"}]},"index":2}]}`, text, false, "[2:a 2:b]"),
		c("no index: the position", `{"candidates":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}`, text, false, "[0:a 1:b]"),
		c("content given twice", `{"candidates":[{"content":{"parts":[{"text":"a"}]},"index":1,"content":{"parts":[{"text":"b","text":"c"}]}}]}`, text, false, "[1:a 1:b 1:c]"),
		c("candidates given twice", `{"candidates":[{"content":{"parts":[{"text":"p"}]}}],"candidates":[{"content":{"parts":[{"text":"q"}]}}]}`, text, false, "[0:p 0:q]"),
		c("finish", `{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}]}`, text, true, "[0:x]"),
		c("escaped keys", `{"c\u0061ndidates":[{"\u0063ontent":{"p\u0061rts":[{"t\u0065xt":"\u00e9"}]},"index":3}]}`, text, false, "[3:é]"),
		c("function call", `{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]},"index":0}]}`, neutral, false, "[]"),
		c("usage only", `{"usageMetadata":{"promptTokenCount":3}}`, other, false, "[]"),
		c("missing brace", `{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]`, other, false, "[]"),
		c("trailing garbage", `{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]},`, other, false, "[]"),
	})
}

func BenchmarkParseStreamEvent(b *testing.B) {
	doc := []byte(`{"candidates":[{"content":{"parts":[{"text":"Hello! How can I help you today?"}],"role":"model"},"index":0}],` +
		`"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.0-flash"}`)
	var ev provider.StreamEvent
	for b.Loop() {
		(&Provider{}).ParseStreamEvent(nil, doc, &ev)
	}
}
