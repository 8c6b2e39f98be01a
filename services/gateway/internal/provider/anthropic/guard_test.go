package anthropic

import (
	"fmt"
	"testing"

	"trueportai/services/gateway/internal/provider"
)

// ParseEvent finds the text of an event in the object its type names,
// whatever the member order, repeats and escapes, and nothing in a
// document that is not valid JSON.
func TestParseEvent(t *testing.T) {
	const other, text, neutral, whole = provider.EventOther, provider.EventText, provider.EventNeutral, provider.EventWhole
	for _, tc := range []struct {
		name, data string
		kind       provider.EventKind
		end        bool
		want       string // "channel:text" of each delta, in order
	}{
		{"text delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}`, text, false, "[1:Hi]"},
		{"type last", `{"index":2,"delta":{"text":"a"},"type":"content_block_delta"}`, text, false, "[2:a]"},
		{"escaped keys", `{"\u0074ype":"content_block_delta","index":3,"d\u0065lta":{"t\u0065xt":"e\u00e9"}}`, text, false, "[3:eé]"},
		{"delta given twice", `{"type":"content_block_delta","delta":{"text":"a"},"delta":{"text":"b","text":"c"}}`, text, false, "[0:a 0:b 0:c]"},
		{"a delta's content_block is not its text", `{"type":"content_block_delta","content_block":{"text":"y"},"delta":{"text":"x"}}`, text, false, "[0:x]"},
		{"block start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`, text, true, "[0:]"},
		{"a block start's delta is not its text", `{"type":"content_block_start","index":4,"delta":{"text":"x"},"content_block":{"text":"y"}}`, text, true, "[4:y]"},
		{"tool input", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}`, neutral, false, "[]"},
		{"tool block start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`, other, false, "[]"},
		{"ping", `{"type":"ping"}`, neutral, false, "[]"},
		{"message start", `{"type":"message_start","message":{"content":[]}}`, whole, false, "[]"},
		{"block stop", `{"type":"content_block_stop","index":0}`, other, false, "[]"},
		{"missing brace", `{"type":"content_block_delta","index":1,"delta":{"text":"Hi"}`, other, false, "[]"},
		{"trailing garbage", `{"type":"content_block_delta","index":1,"delta":{"text":"Hi"}}}`, other, false, "[]"},
		{"not an object", `["content_block_delta"]`, other, false, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev provider.StreamEvent
			ev.Reset()
			ParseEvent([]byte(tc.data), &ev)
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

func BenchmarkParseEvent(b *testing.B) {
	doc := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello! How can I help you today?"}}`)
	var ev provider.StreamEvent
	for b.Loop() {
		ev.Reset()
		ParseEvent(doc, &ev)
	}
}
