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
	// One pass checks the document and finds its members; which of the
	// objects holds the text depends on the type, which may come last, so
	// both candidates are kept in order (what was found counts only if the
	// document is valid).
	var typ []byte
	index := 0
	var small [2]innerObject
	objs := small[:0]
	if !jsonscan.ValidMemberBounds(doc, func(m jsonscan.Member) {
		switch {
		case jsonscan.KeyIs(m.Key, "type"):
			typ = doc[m.Start:m.End]
		case jsonscan.KeyIs(m.Key, "index"):
			index = provider.IntValue(doc, m.Start, m.End, 0)
		case jsonscan.KeyIs(m.Key, "delta"):
			objs = append(objs, innerObject{false, m.Start})
		case jsonscan.KeyIs(m.Key, "content_block"):
			objs = append(objs, innerObject{true, m.Start})
		}
	}) {
		return
	}
	ev.Doc = doc
	blockStart := false
	switch jsonscan.Unquote(typ) {
	case "content_block_delta":
	case "content_block_start":
		// A new block: earlier texts end; its own text (normally "") is
		// released at once rather than cloned later as a block start.
		blockStart, ev.End = true, true
	case "ping":
		ev.Kind = provider.EventNeutral
		return
	case "message_start":
		ev.Kind, ev.Paths = provider.EventWhole, messageText
		return
	default:
		return
	}
	inner := -1
	for _, o := range objs {
		if o.block != blockStart {
			continue
		}
		inner = o.start
		provider.ObjectMembers(doc, inner, func(k []byte, s, e int) {
			if jsonscan.KeyIs(k, "text") {
				ev.AddString(index, doc, s, e)
			}
		})
	}
	if ev.Kind != provider.EventText && inner >= 0 && !ev.End {
		ev.Kind = provider.EventNeutral // tool input, thinking, signatures
	}
	if ev.Kind != provider.EventText {
		ev.End = false
	}
}

// innerObject is a member of an event that may hold its text: "delta"
// (block false) or "content_block" (block true), its value at start.
type innerObject struct {
	block bool
	start int
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
