package google

import (
	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/sse"
)

var _ provider.StreamText = (*Provider)(nil)

// ParseStreamEvent implements provider.StreamText for streamGenerateContent
// with alt=sse: each chunk's candidates[].content.parts[].text are deltas,
// one channel per candidate index; a finishReason ends the candidate's
// text. Chunks without candidates (usage, prompt feedback, errors) end the
// texts; candidates without text (function calls) are neutral.
func (*Provider) ParseStreamEvent(name, data []byte, ev *provider.StreamEvent) {
	ev.Reset()
	i := jsonscan.SkipWS(data, 0)
	if i == len(data) {
		if len(name) == 0 {
			ev.Kind = provider.EventNeutral
		}
		return
	}
	if data[i] != '{' {
		return
	}
	// One pass checks the document and finds its candidates arrays (what
	// it found counts only if the document is valid).
	var small [1]int
	lists := small[:0]
	if !jsonscan.ValidMemberBounds(data, func(m jsonscan.Member) {
		if jsonscan.KeyIs(m.Key, "candidates") {
			lists = append(lists, m.Start)
		}
	}) {
		return
	}
	ev.Doc = data
	candidates := false
	for _, list := range lists {
		provider.ArrayElements(data, list, func(n, cs, _ int) {
			candidates = true
			// One pass over the candidate: its index (the last one given)
			// is known only at the end, so its contents are kept, in
			// order, and read after.
			ch := n
			var inline [2]int
			contents := inline[:0]
			provider.ObjectMembers(data, cs, func(k []byte, s, e int) {
				switch {
				case jsonscan.KeyIs(k, "index"):
					ch = provider.IntValue(data, s, e, n)
				case jsonscan.KeyIs(k, "content"):
					contents = append(contents, s)
				case jsonscan.KeyIs(k, "finishReason"), jsonscan.KeyIs(k, "finish_reason"):
					if string(data[s:e]) != "null" {
						ev.End = true
					}
				}
			})
			for _, c := range contents {
				provider.ObjectMembers(data, c, func(k2 []byte, s2, _ int) {
					if !jsonscan.KeyIs(k2, "parts") {
						return
					}
					provider.ArrayElements(data, s2, func(_, ps, _ int) {
						provider.ObjectMembers(data, ps, func(k3 []byte, s3, e3 int) {
							if jsonscan.KeyIs(k3, "text") {
								ev.AddString(ch, data, s3, e3)
							}
						})
					})
				})
			}
		})
	}
	if ev.Kind == provider.EventText || ev.End || !candidates {
		return
	}
	ev.Kind = provider.EventNeutral
}

// WrapStreamEvent implements provider.StreamText: the data lines carry doc.
func (*Provider) WrapStreamEvent(dst, raw, _, _, doc []byte) ([]byte, bool) {
	return sse.ReplaceData(dst, raw, doc), true
}

// StreamErrorEvent implements provider.StreamText: a chunk holding
// {"error":{"code","message","status"}}, which the SDKs raise. It ends
// with CRLF CRLF like the API's own events: the Go SDK splits events at the
// first "\n\n" or "\r\n\r\n", and a "\n\n" event read in one piece with a
// CRLF-terminated one before it would be split inside the first.
func (p *Provider) StreamErrorEvent(dst []byte, _ *provider.Target, status int, code, message string) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, p.ErrorBody(status, code, message)...)
	return append(dst, "\r\n\r\n"...)
}
