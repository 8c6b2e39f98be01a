package google

import (
	"fmt"
	"testing"

	"trueportai/services/gateway/internal/provider"
)

// ParseStreamEvent finds every part's text of every candidate on the
// candidate's channel, whatever the member order, repeats and escapes, and
// nothing in a document that is not valid JSON.
func TestParseStreamEvent(t *testing.T) {
	const other, text, neutral = provider.EventOther, provider.EventText, provider.EventNeutral
	for _, tc := range []struct {
		name, data string
		kind       provider.EventKind
		end        bool
		want       string // "channel:text" of each delta, in order
	}{
		{"text", `{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}],"modelVersion":"m"}`, text, false, "[0:Hi]"},
		{"index after the content", `{"candidates":[{"content":{"parts":[{"text":"a"},{"text":"b"}]},"index":2}]}`, text, false, "[2:a 2:b]"},
		{"no index: the position", `{"candidates":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}`, text, false, "[0:a 1:b]"},
		{"content given twice", `{"candidates":[{"content":{"parts":[{"text":"a"}]},"index":1,"content":{"parts":[{"text":"b","text":"c"}]}}]}`, text, false, "[1:a 1:b 1:c]"},
		{"candidates given twice", `{"candidates":[{"content":{"parts":[{"text":"p"}]}}],"candidates":[{"content":{"parts":[{"text":"q"}]}}]}`, text, false, "[0:p 0:q]"},
		{"finish", `{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}]}`, text, true, "[0:x]"},
		{"escaped keys", `{"c\u0061ndidates":[{"\u0063ontent":{"p\u0061rts":[{"t\u0065xt":"\u00e9"}]},"index":3}]}`, text, false, "[3:é]"},
		{"function call", `{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]},"index":0}]}`, neutral, false, "[]"},
		{"usage only", `{"usageMetadata":{"promptTokenCount":3}}`, other, false, "[]"},
		{"missing brace", `{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]`, other, false, "[]"},
		{"trailing garbage", `{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]},`, other, false, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev provider.StreamEvent
			(&Provider{}).ParseStreamEvent(nil, []byte(tc.data), &ev)
			got := "["
			for i, d := range ev.Deltas {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%d:%s", d.Channel, d.Text)
				if lit := tc.data[d.Start:d.End]; lit[0] != '"' || lit[len(lit)-1] != '"' {
					t.Errorf("delta %d bounds %q: not a string literal", i, lit)
				}
			}
			got += "]"
			if ev.Kind != tc.kind || ev.End != tc.end || got != tc.want {
				t.Fatalf("kind %v end %v deltas %s; want kind %v end %v deltas %s", ev.Kind, ev.End, got, tc.kind, tc.end, tc.want)
			}
		})
	}
}

func BenchmarkParseStreamEvent(b *testing.B) {
	doc := []byte(`{"candidates":[{"content":{"parts":[{"text":"Hello! How can I help you today?"}],"role":"model"},"index":0}],` +
		`"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.0-flash"}`)
	var ev provider.StreamEvent
	for b.Loop() {
		(&Provider{}).ParseStreamEvent(nil, doc, &ev)
	}
}
