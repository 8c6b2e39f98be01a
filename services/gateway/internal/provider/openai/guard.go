package openai

import (
	"encoding/json"
	"strings"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/sse"
	"trueportai/services/gateway/internal/textpath"
)

// Stream text of the OpenAI format (provider.StreamText):
//   - Chat Completions: choices[].delta.content, one channel per choice
//     index; legacy Completions: choices[].text. A finish_reason ends the
//     choice's text.
//   - Responses API: response.output_text.delta's "delta", one channel per
//     output_index/content_index; the events that repeat whole texts
//     (response.output_text.done's text, content_part.*'s part.text,
//     output_item.*'s item.content[].text, the response.* snapshots'
//     response.output[].content[].text) are evaluated whole.

var _ provider.StreamText = Format{}

var (
	wholeText     = textpath.Compile([]textpath.Spec{{Path: "text", Flags: textpath.Text}})
	wholePart     = textpath.Compile([]textpath.Spec{{Path: "part.text", Flags: textpath.Text}})
	wholeItem     = textpath.Compile([]textpath.Spec{{Path: "item.content[].text", Flags: textpath.Text}})
	wholeResponse = textpath.Compile([]textpath.Spec{{Path: "response.output[].content[].text", Flags: textpath.Text}})
)

// ParseStreamEvent implements provider.StreamText.
func (Format) ParseStreamEvent(name, data []byte, ev *provider.StreamEvent) {
	ev.Reset()
	i := jsonscan.SkipWS(data, 0)
	if i == len(data) {
		if len(name) == 0 {
			ev.Kind = provider.EventNeutral // a comment or keep-alive
		}
		return
	}
	if data[i] != '{' {
		return // [DONE], or not understood
	}
	// One pass checks the document and finds its top-level members (what
	// it found counts only if the document is valid).
	var typ []byte
	choices := -1
	outIdx, partIdx := 0, 0
	if !jsonscan.ValidMemberBounds(data, func(m jsonscan.Member) {
		switch {
		case jsonscan.KeyIs(m.Key, "type"):
			typ = data[m.Start:m.End]
		case jsonscan.KeyIs(m.Key, "choices"):
			choices = m.Start
		case jsonscan.KeyIs(m.Key, "output_index"):
			outIdx = provider.IntValue(data, m.Start, m.End, 0)
		case jsonscan.KeyIs(m.Key, "content_index"):
			partIdx = provider.IntValue(data, m.Start, m.End, 0)
		}
	}) {
		return // not understood
	}
	ev.Doc = data
	if t := jsonscan.Unquote(typ); strings.HasPrefix(t, "response.") {
		responsesEvent(t, data, outIdx<<16|partIdx&0xffff, ev)
		return
	}
	if choices < 0 {
		return // an error, or something else
	}
	nonEmpty := false
	provider.ArrayElements(data, choices, func(n, cs, _ int) {
		nonEmpty = true
		// One pass over the choice: its index (the last one given) is
		// known only at the end, so its text members are kept, in order,
		// and added after.
		ch := n
		var small [4]choiceText
		texts := small[:0]
		provider.ObjectMembers(data, cs, func(key []byte, vs, ve int) {
			switch {
			case jsonscan.KeyIs(key, "index"):
				ch = provider.IntValue(data, vs, ve, n)
			case jsonscan.KeyIs(key, "delta"):
				texts = append(texts, choiceText{true, vs, ve})
			case jsonscan.KeyIs(key, "text"):
				texts = append(texts, choiceText{false, vs, ve})
			case jsonscan.KeyIs(key, "finish_reason"):
				if string(data[vs:ve]) != "null" {
					ev.End = true
				}
			}
		})
		for _, t := range texts {
			if !t.delta {
				ev.AddString(ch, data, t.s, t.e)
				continue
			}
			provider.ObjectMembers(data, t.s, func(k []byte, s, e int) {
				if jsonscan.KeyIs(k, "content") {
					ev.AddString(ch, data, s, e)
				}
			})
		}
	})
	if ev.Kind == provider.EventText || ev.End || !nonEmpty {
		return // text; or a finish, usage or empty chunk: EventOther
	}
	ev.Kind = provider.EventNeutral // role, tool-call and filter chunks
}

// choiceText is a text member of a Chat Completions choice: its delta
// object, or a legacy Completions text string; s and e bound its value.
type choiceText struct {
	delta bool
	s, e  int
}

// responsesEvent classifies a Responses API event of type t.
func responsesEvent(t string, data []byte, channel int, ev *provider.StreamEvent) {
	switch t {
	case "response.output_text.delta":
		// Every "delta" member (a repeated key included) is text.
		provider.ObjectMembers(data, 0, func(key []byte, vs, ve int) {
			if jsonscan.KeyIs(key, "delta") {
				ev.AddString(channel, data, vs, ve)
			}
		})
	case "response.output_text.done":
		ev.Kind, ev.Paths = provider.EventWhole, wholeText
	case "response.content_part.added", "response.content_part.done":
		ev.Kind, ev.Paths = provider.EventWhole, wholePart
	case "response.output_item.added", "response.output_item.done":
		ev.Kind, ev.Paths = provider.EventWhole, wholeItem
	case "response.created", "response.in_progress", "response.queued",
		"response.completed", "response.incomplete", "response.failed":
		ev.Kind, ev.Paths = provider.EventWhole, wholeResponse
	case "response.output_text.annotation.added":
		ev.Kind = provider.EventNeutral
	}
}

// WrapStreamEvent implements provider.StreamText: the data lines carry doc.
func (Format) WrapStreamEvent(dst, raw, _, _, doc []byte) ([]byte, bool) {
	return sse.ReplaceData(dst, raw, doc), true
}

type streamError struct {
	Type    string      `json:"type"`
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Param   *string     `json:"param"`
	Error   errorDetail `json:"error"`
}

// StreamErrorEvent implements provider.StreamText: Chat Completions get
// data: {"error":{...}} (the SDKs raise it); the Responses API an "error"
// event, which carries the same "error" object so that SDKs raising on
// either shape do.
func (Format) StreamErrorEvent(dst []byte, t *provider.Target, status int, code, message string) []byte {
	detail := errorDetail{Message: message, Type: provider.OpenAIErrorType(status), Code: code}
	if strings.HasPrefix(t.Rest, "responses") {
		b, _ := json.Marshal(streamError{Type: "error", Code: code, Message: message, Error: detail})
		dst = append(dst, "event: error\ndata: "...)
		dst = append(dst, b...)
		return append(dst, "\n\n"...)
	}
	b, _ := json.Marshal(errorBody{Error: detail})
	dst = append(dst, "data: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}
