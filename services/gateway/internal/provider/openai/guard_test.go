package openai

import (
	"fmt"
	"testing"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/providertest"
)

// ParseStreamEvent finds every text of a chunk on its channel, whatever the
// member order, repeats, escapes and nesting, and nothing in a document
// that is not valid JSON.
func TestParseStreamEvent(t *testing.T) {
	const other, text, neutral, whole = provider.EventOther, provider.EventText, provider.EventNeutral, provider.EventWhole
	c := providertest.Case
	providertest.RunStreamTextCases(t, func(data []byte, ev *provider.StreamEvent) { Format{}.ParseStreamEvent(nil, data, ev) }, []providertest.StreamTextCase{
		c("content", `{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`, text, false, "[0:Hi]"),
		c("index after the delta", `{"choices":[{"delta":{"content":"a"},"index":2}]}`, text, false, "[2:a]"),
		c("index given twice: the last counts", `{"choices":[{"index":1,"delta":{"content":"a"},"index":3}]}`, text, false, "[3:a]"),
		c("no index: the position", `{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}`, text, false, "[0:a 1:b]"),
		c("delta given twice", `{"choices":[{"index":1,"delta":{"content":"a"},"delta":{"content":"b","content":"c"}}]}`, text, false, "[1:a 1:b 1:c]"),
		c("more texts than the choice keeps inline", `{"choices":[{"delta":{"content":"1"},"text":"2","delta":{"content":"3"},"text":"4","delta":{"content":"5"},"index":7}]}`,
			text, false, "[7:1 7:2 7:3 7:4 7:5]"),
		c("legacy text and a finish", `{"choices":[{"text":"x","index":0,"finish_reason":"stop"}]}`, text, true, "[0:x]"),
		c("escaped keys and text", `{"choices":[{"\u0069ndex":4,"\u0064elta":{"c\u006fntent":"z\n\u00e9"}}]}`, text, false, "[4:z\né]"),
		c("choices given twice: the last counts", `{"choices":[{"delta":{"content":"p"}}],"choices":[{"delta":{"content":"q"}}]}`, text, false, "[0:q]"),
		c("whitespace everywhere", " {\n\"choices\" : [ { \"index\" : 1 , \"delta\" : { \"content\" : \"w\" } } ] } ", text, false, "[1:w]"),
		c("role chunk", `{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}`, neutral, false, "[]"),
		c("finish only", `{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}`, other, true, "[]"),
		c("usage chunk", `{"choices":[],"usage":{"prompt_tokens":3}}`, other, false, "[]"),
		c("missing brace", `{"choices":[{"index":0,"delta":{"content":"a"}}]`, other, false, "[]"),
		c("trailing garbage", `{"choices":[{"index":0,"delta":{"content":"a"}}]}x`, other, false, "[]"),
		c("bad escape inside", `{"choices":[{"index":0,"delta":{"content":"\q"}}]}`, other, false, "[]"),
		c("done", `[DONE]`, other, false, "[]"),
		c("responses delta", `{"type":"response.output_text.delta","output_index":1,"content_index":2,"delta":"hey"}`, text, false, fmt.Sprintf("[%d:hey]", 1<<16|2)),
		c("responses snapshot", `{"type":"response.completed","response":{"output":[]}}`, whole, false, "[]"),
	})
}
