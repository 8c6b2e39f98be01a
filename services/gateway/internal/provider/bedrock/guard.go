package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/anthropic"
)

var _ provider.StreamText = (*Provider)(nil)

// ParseStreamEvent implements provider.StreamText.
//
// ConverseStream: contentBlockDelta's delta.text is a delta of its
// contentBlockIndex; messageStart and contentBlockStart are neutral;
// contentBlockStop, messageStop, metadata and exceptions end the texts.
//
// InvokeModelWithResponseStream: a chunk's base64 "bytes" hold the model's
// own event, which becomes Doc: Anthropic's Messages events
// (anthropic.ParseEvent), Llama's "generation", Titan's "outputText" and
// Mistral's outputs[].text (a stop reason ends the text).
func (*Provider) ParseStreamEvent(name, data []byte, ev *provider.StreamEvent) {
	ev.Reset()
	switch string(name) {
	case "messageStart", "contentBlockStart":
		ev.Kind = provider.EventNeutral
	case "contentBlockDelta":
		if !jsonscan.Valid(data) {
			return
		}
		ev.Doc = data
		index, delta := 0, -1
		provider.ObjectMembers(data, 0, func(key []byte, vs, ve int) {
			switch {
			case jsonscan.KeyIs(key, "contentBlockIndex"):
				index = provider.IntValue(data, vs, ve, 0)
			case jsonscan.KeyIs(key, "delta"):
				delta = vs
			}
		})
		provider.ObjectMembers(data, 0, func(key []byte, vs, _ int) {
			if !jsonscan.KeyIs(key, "delta") {
				return
			}
			provider.ObjectMembers(data, vs, func(k []byte, s, e int) {
				if jsonscan.KeyIs(k, "text") {
					ev.AddString(index, data, s, e)
				}
			})
		})
		if ev.Kind != provider.EventText && delta >= 0 {
			ev.Kind = provider.EventNeutral // tool input, reasoning
		}
	case "chunk":
		doc, ok := chunkBytes(data, ev.DocBuffer())
		if !ok {
			return
		}
		ev.SetDoc(doc)
		if !jsonscan.Valid(doc) {
			return
		}
		typed := false
		provider.ObjectMembers(doc, 0, func(key []byte, _, _ int) {
			typed = typed || jsonscan.KeyIs(key, "type")
		})
		if typed {
			anthropic.ParseEvent(doc, ev)
			return
		}
		modelChunk(doc, ev)
	}
}

// modelChunk reads the stream chunks of Llama, Titan and Mistral models.
func modelChunk(doc []byte, ev *provider.StreamEvent) {
	ev.Doc = doc
	provider.ObjectMembers(doc, 0, func(key []byte, vs, ve int) {
		switch {
		case jsonscan.KeyIs(key, "generation"), jsonscan.KeyIs(key, "outputText"):
			ev.AddString(0, doc, vs, ve)
		case jsonscan.KeyIs(key, "outputs"):
			provider.ArrayElements(doc, vs, func(n, es, _ int) {
				provider.ObjectMembers(doc, es, func(k []byte, s, e int) {
					switch {
					case jsonscan.KeyIs(k, "text"):
						ev.AddString(n, doc, s, e)
					case jsonscan.KeyIs(k, "stop_reason"):
						ev.End = ev.End || string(doc[s:e]) != "null"
					}
				})
			})
		case jsonscan.KeyIs(key, "stop_reason"), jsonscan.KeyIs(key, "completionReason"):
			ev.End = ev.End || string(doc[vs:ve]) != "null"
		}
	})
	if ev.Kind != provider.EventText {
		ev.Kind, ev.End = provider.EventOther, false
	}
}

// chunkBytes decodes the base64 "bytes" member of a chunk event's payload
// into buf.
func chunkBytes(data, buf []byte) ([]byte, bool) {
	if !jsonscan.Valid(data) {
		return nil, false
	}
	var raw []byte
	provider.ObjectMembers(data, 0, func(key []byte, vs, ve int) {
		if jsonscan.KeyIs(key, "bytes") && ve-vs >= 2 && data[vs] == '"' {
			raw = data[vs+1 : ve-1]
		}
	})
	if raw == nil {
		return nil, false
	}
	n := base64.StdEncoding.DecodedLen(len(raw))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(buf[:n], raw)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// WrapStreamEvent implements provider.StreamText: the message is
// re-encoded with its headers as received and the new payload (for a
// chunk, its "bytes" member re-encoded in base64), with both CRCs
// computed anew.
func (*Provider) WrapStreamEvent(dst, raw, name, data, doc []byte) ([]byte, bool) {
	payload := doc
	if string(name) == "chunk" {
		start, end := -1, -1
		provider.ObjectMembers(data, 0, func(key []byte, vs, ve int) {
			if jsonscan.KeyIs(key, "bytes") {
				start, end = vs, ve
			}
		})
		if start < 0 {
			return dst, false
		}
		payload = make([]byte, 0, len(data)-(end-start)+base64.StdEncoding.EncodedLen(len(doc))+2)
		payload = append(payload, data[:start]...)
		payload = append(payload, '"')
		payload = base64.StdEncoding.AppendEncode(payload, doc)
		payload = append(payload, '"')
		payload = append(payload, data[end:]...)
	}
	if len(raw) < 16 {
		return dst, false
	}
	hl := int(binary.BigEndian.Uint32(raw[4:8]))
	if 12+hl > len(raw)-4 {
		return dst, false
	}
	return appendMessage(dst, raw[12:12+hl], payload), true
}

// appendMessage appends one event-stream message: prelude (total length,
// headers length, CRC), the encoded headers, the payload and the message
// CRC (CRC-32, IEEE).
func appendMessage(dst, headers, payload []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(12+len(headers)+len(payload)+4))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(headers)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:start+8]))
	dst = append(dst, headers...)
	dst = append(dst, payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
}

// StreamErrorEvent implements provider.StreamText: an exception message
// (validationException, or serviceUnavailableException for a 503), which
// the AWS SDKs surface as a typed error from the stream.
func (*Provider) StreamErrorEvent(dst []byte, _ *provider.Target, status int, _, message string) []byte {
	var h eventstream.Headers
	h.Set(":message-type", eventstream.StringValue("exception"))
	h.Set(":exception-type", eventstream.StringValue(streamExceptionType(status)))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	var hb bytes.Buffer
	if err := eventstream.EncodeHeaders(&hb, h); err != nil {
		return dst
	}
	payload, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{message})
	return appendMessage(dst, hb.Bytes(), payload)
}

// streamExceptionType is the exception of a ConverseStream or
// InvokeModelWithResponseStream stream for an error with this status: one
// of the exceptions those streams declare, which the SDKs decode into
// their typed errors.
func streamExceptionType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "throttlingException"
	case status == http.StatusServiceUnavailable:
		return "serviceUnavailableException"
	case status >= 500:
		return "internalServerException"
	default:
		return "validationException"
	}
}
