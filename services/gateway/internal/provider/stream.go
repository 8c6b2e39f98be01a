package provider

import (
	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/textpath"
)

// StreamText is implemented by providers whose streamed responses the
// gateway can enforce response rules on (docs/decisions.md, "Response rules
// on streams"): the proxy reads the text deltas of each event, holds back
// what could still be part of a match, and forwards events rewritten with
// the text it releases (redacted where a rule says so), or ends the stream
// with StreamErrorEvent when a block rule matches.
type StreamText interface {
	// ParseStreamEvent reads one event, as its Framer returned it (name
	// and data), into ev (reset first; its buffers are reused). What is not
	// understood is EventOther.
	ParseStreamEvent(name, data []byte, ev *StreamEvent)
	// WrapStreamEvent appends to dst the event raw (name and data as the
	// Framer returned them) with its document (ev.Doc as parsed) replaced
	// by doc, framed and encoded as the stream needs (SSE data lines,
	// base64 chunk bytes, event-stream CRCs). ok=false when raw cannot be
	// re-encoded (the caller then must not forward the text).
	WrapStreamEvent(dst, raw, name, data, doc []byte) (out []byte, ok bool)
	// StreamErrorEvent appends a terminal error event in the provider's
	// shape, which its SDKs surface as an error; nothing follows it. t is
	// the request's target (OpenAI's Responses API has its own shape);
	// status is the HTTP status the error would have had as an answer
	// (400 for a policy block, 503 for a stream ended by the gateway's
	// shutdown), which picks the error's type in the provider's vocabulary.
	StreamErrorEvent(dst []byte, t *Target, status int, code, message string) []byte
}

// StreamKeepAlive is implemented by providers whose streams can carry a
// keep-alive that their SDKs ignore: bytes the proxy writes between two
// events when a stream has been silent toward the client for a while, so
// that an edge cutting idle connections does not cut it (docs/decisions.md,
// "Stream keep-alives"). A provider without it gets none.
type StreamKeepAlive interface {
	// KeepAlive returns the keep-alive of a stream with this framing, nil
	// when the framing has none.
	KeepAlive(f Framing) []byte
}

// EventKind is what a stream event means for the text it carries.
type EventKind uint8

const (
	// EventOther ends the texts so far: text held back is released before
	// the event is forwarded (end of a block, finish, usage, errors, and
	// anything not understood).
	EventOther EventKind = iota
	// EventNeutral carries no text and ends nothing (pings, block starts):
	// forwarded as is, held text stays held.
	EventNeutral
	// EventText carries text deltas (StreamEvent.Deltas).
	EventText
	// EventWhole repeats complete texts (the Responses API's *.done and
	// response.completed events): Doc is evaluated as a whole along
	// StreamEvent.Paths, like a non-streamed response.
	EventWhole
)

// StreamEvent is what one stream event says about text.
type StreamEvent struct {
	Kind EventKind
	// End is set on an EventText whose deltas are the last of their texts
	// (a finish reason in the same chunk): held text is released into it.
	End bool
	// Doc is the JSON document the deltas' offsets refer to: the event's
	// data, or the document a Bedrock chunk carries in base64.
	Doc []byte
	// Deltas are the text deltas of an EventText, in document order.
	Deltas []Delta
	// Paths are the text paths of an EventWhole's Doc.
	Paths *textpath.Trie

	text   []byte // decoded deltas
	docBuf []byte // a decoded Doc
}

// Delta is one text delta: a JSON string literal in the event's document.
type Delta struct {
	// Channel separates texts that are not one sequence: choices,
	// candidates, content blocks and output items.
	Channel int
	// Start and End delimit the string literal (quotes included) in Doc.
	Start, End int
	// Text is the decoded text; valid until the next ParseStreamEvent.
	Text []byte
}

// Reset empties ev for the next event, keeping its buffers.
func (ev *StreamEvent) Reset() {
	ev.Kind, ev.End, ev.Doc, ev.Paths = EventOther, false, nil, nil
	ev.Deltas = ev.Deltas[:0]
	ev.text = ev.text[:0]
}

// DocBuffer returns a reusable buffer for a decoded document (truncated).
func (ev *StreamEvent) DocBuffer() []byte { return ev.docBuf[:0] }

// SetDoc sets the document, keeping its storage for reuse when it is the
// DocBuffer's.
func (ev *StreamEvent) SetDoc(doc []byte) {
	ev.Doc = doc
	if cap(doc) > cap(ev.docBuf) {
		ev.docBuf = doc[:0]
	}
}

// AddString records the string literal doc[start:end] as a delta of
// channel; a value that is not a well-formed string is ignored (null, a
// number). It reports whether a delta was added.
func (ev *StreamEvent) AddString(channel int, doc []byte, start, end int) bool {
	if start < 0 || end > len(doc) || end-start < 2 || doc[start] != '"' {
		return false
	}
	from := len(ev.text)
	var ok bool
	if ev.text, ok = jsonscan.AppendUnquoted(ev.text, doc[start:end]); !ok {
		return false
	}
	// Earlier deltas keep their slices: growing the buffer copies it.
	ev.Deltas = append(ev.Deltas, Delta{Channel: channel, Start: start, End: end, Text: ev.text[from:len(ev.text):len(ev.text)]})
	ev.Kind = EventText
	return true
}

// SpliceStrings appends to dst the document doc with each delta's string
// literal replaced by the JSON encoding of texts[i] (deltas in document
// order, not overlapping).
func SpliceStrings(dst, doc []byte, deltas []Delta, texts [][]byte) []byte {
	last := 0
	for i, d := range deltas {
		dst = append(dst, doc[last:d.Start]...)
		dst = jsonscan.AppendQuoted(dst, texts[i])
		last = d.End
	}
	return append(dst, doc[last:]...)
}

// ObjectMembers calls f with each member of the object at doc[start:]
// (raw key with quotes, value bounds); nothing for a non-object.
func ObjectMembers(doc []byte, start int, f func(key []byte, vs, ve int)) {
	i := jsonscan.SkipWS(doc, start)
	if i >= len(doc) || doc[i] != '{' {
		return
	}
	pos, first := i+1, true
	for {
		m, next, done, ok := jsonscan.NextMember(doc, pos, first)
		if !ok || done {
			return
		}
		f(m.Key, m.Start, m.End)
		pos, first = next, false
	}
}

// ArrayElements calls f with the position and bounds of each element of
// the array at doc[start:]; nothing for a non-array.
func ArrayElements(doc []byte, start int, f func(i, vs, ve int)) {
	i := jsonscan.SkipWS(doc, start)
	if i >= len(doc) || doc[i] != '[' {
		return
	}
	pos, first := i+1, true
	for n := 0; ; n++ {
		s, e, next, done, ok := jsonscan.NextElement(doc, pos, first)
		if !ok || done {
			return
		}
		f(n, s, e)
		pos, first = next, false
	}
}

// IntValue reads a small non-negative JSON integer (an index), else def.
func IntValue(doc []byte, vs, ve int, def int) int {
	if vs >= ve || ve-vs > 6 {
		return def
	}
	n := 0
	for _, c := range doc[vs:ve] {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	return n
}
