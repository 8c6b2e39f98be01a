package anthropic

import (
	"encoding/json"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/sse"
	"trueportai/services/gateway/internal/textpath"
)

var _ provider.StreamText = (*Provider)(nil)

// messageText is where a message_start event could carry text.
var messageText = textpath.Compile([]textpath.Spec{{Path: "message.content[].text", Flags: textpath.Text}})

// ParseStreamEvent implements provider.StreamText (see ParseEvent).
func (*Provider) ParseStreamEvent(name, data []byte, ev *provider.StreamEvent) {
	ev.Reset()
	if jsonscan.SkipWS(data, 0) == len(data) && len(name) == 0 {
		ev.Kind = provider.EventNeutral
		return
	}
	ParseEvent(data, ev)
}

// ParseEvent reads one Messages API stream event (its JSON, whose "type"
// names it, as SDKs read it): content_block_delta's delta.text and
// content_block_start's content_block.text are deltas of the block's index
// (a block start ends the texts before it); ping and the deltas of tool
// input, thinking and signatures are neutral; message_start is evaluated
// whole; block stops, message_delta, message_stop and errors end the texts. Bedrock's InvokeModel streams carry
// the same events.
func ParseEvent(doc []byte, ev *provider.StreamEvent) {
	if !jsonscan.Valid(doc) {
		return
	}
	ev.Doc = doc
	var typ []byte
	index, inner, innerKey := 0, -1, ""
	provider.ObjectMembers(doc, 0, func(key []byte, vs, ve int) {
		switch {
		case jsonscan.KeyIs(key, "type"):
			typ = doc[vs:ve]
		case jsonscan.KeyIs(key, "index"):
			index = provider.IntValue(doc, vs, ve, 0)
		}
	})
	switch jsonscan.Unquote(typ) {
	case "content_block_delta":
		innerKey = "delta"
	case "content_block_start":
		// A new block: earlier texts end; its own text (normally "") is
		// released at once rather than cloned later as a block start.
		innerKey, ev.End = "content_block", true
	case "ping":
		ev.Kind = provider.EventNeutral
		return
	case "message_start":
		ev.Kind, ev.Paths = provider.EventWhole, messageText
		return
	default:
		return
	}
	provider.ObjectMembers(doc, 0, func(key []byte, vs, _ int) {
		if jsonscan.KeyIs(key, innerKey) {
			inner = vs
			provider.ObjectMembers(doc, inner, func(k []byte, s, e int) {
				if jsonscan.KeyIs(k, "text") {
					ev.AddString(index, doc, s, e)
				}
			})
		}
	})
	if ev.Kind != provider.EventText && inner >= 0 && !ev.End {
		ev.Kind = provider.EventNeutral // tool input, thinking, signatures
	}
	if ev.Kind != provider.EventText {
		ev.End = false
	}
}

// WrapStreamEvent implements provider.StreamText: the data lines carry doc.
func (*Provider) WrapStreamEvent(dst, raw, _, _, doc []byte) ([]byte, bool) {
	return sse.ReplaceData(dst, raw, doc), true
}

// StreamErrorEvent implements provider.StreamText: an "error" event with
// {"type":"error","error":{...}}, as the API sends mid-stream.
func (p *Provider) StreamErrorEvent(dst []byte, _ *provider.Target, status int, _, message string) []byte {
	b, _ := json.Marshal(errorBody{Type: "error", Error: errorDetail{Type: provider.AnthropicErrorType(status), Message: message}})
	dst = append(dst, "event: error\ndata: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}
