package anthropic

import (
	"testing"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/providertest"
)

// ParseEvent finds the text of an event in the object its type names,
// whatever the member order, repeats and escapes, and nothing in a
// document that is not valid JSON.
func TestParseEvent(t *testing.T) {
	const other, text, neutral, whole = provider.EventOther, provider.EventText, provider.EventNeutral, provider.EventWhole
	c := providertest.Case
	providertest.RunStreamTextCases(t, func(data []byte, ev *provider.StreamEvent) { ParseEvent(data, ev) }, []providertest.StreamTextCase{
		c("text delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}`, text, false, "[1:Hi]"),
		c("type last", `{"index":2,"delta":{"text":"a"},"type":"content_block_delta"}`, text, false, "[2:a]"),
		c("escaped keys", `{"\u0074ype":"content_block_delta","index":3,"d\u0065lta":{"t\u0065xt":"e\u00e9"}}`, text, false, "[3:eé]"),
		c("delta given twice", `{"type":"content_block_delta","delta":{"text":"a"},"delta":{"text":"b","text":"c"}}`, text, false, "[0:a 0:b 0:c]"),
		c("a delta's content_block is not its text", `{"type":"content_block_delta","content_block":{"text":"y"},"delta":{"text":"x"}}`, text, false, "[0:x]"),
		c("block start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`, text, true, "[0:]"),
		c("a block start's delta is not its text", `{"type":"content_block_start","index":4,"delta":{"text":"x"},"content_block":{"text":"y"}}`, text, true, "[4:y]"),
		c("tool input", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}`, neutral, false, "[]"),
		c("tool block start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}`, other, false, "[]"),
		c("ping", `{"type":"ping"}`, neutral, false, "[]"),
		c("message start", `{"type":"message_start","message":{"content":[]}}`, whole, false, "[]"),
		c("block stop", `{"type":"content_block_stop","index":0}`, other, false, "[]"),
		c("missing brace", `{"type":"content_block_delta","index":1,"delta":{"text":"Hi"}`, other, false, "[]"),
		c("trailing garbage", `{"type":"content_block_delta","index":1,"delta":{"text":"Hi"}}}`, other, false, "[]"),
		c("not an object", `["content_block_delta"]`, other, false, "[]"),
	})
}

func BenchmarkParseEvent(b *testing.B) {
	doc := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello! How can I help you today?"}}`)
	var ev provider.StreamEvent
	for b.Loop() {
		ev.Reset()
		ParseEvent(doc, &ev)
	}
}
