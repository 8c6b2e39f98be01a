package fakeprovider

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// contentTypeEventStream is the content type of Bedrock's streamed answers:
// the AWS event-stream binary framing.
const contentTypeEventStream = "application/vnd.amazon.eventstream"

// bedrockAnthropicVersion is the only anthropic_version Bedrock accepts.
const bedrockAnthropicVersion = "bedrock-2023-05-31"

// mountBedrock registers the Bedrock Runtime routes under
// /bedrock/{region}/model/{modelId}. The SDK path-escapes the model id
// (':' as %3A, '/' of an ARN as %2F); ServeMux matches the escaped segment
// and PathValue returns it decoded.
func (s *server) mountBedrock(mux *http.ServeMux) {
	d := bedrockDialect(newBedrockAuth(s.cfg.AWSCredentials))
	const p = "/bedrock/{region}/model/{modelId}"
	mux.HandleFunc("POST "+p+"/converse", s.handle(d, s.converse))
	mux.HandleFunc("POST "+p+"/converse-stream", s.handle(d, s.converseStream))
	mux.HandleFunc("POST "+p+"/invoke", s.handle(d, s.invokeModel))
	mux.HandleFunc("POST "+p+"/invoke-with-response-stream", s.handle(d, s.invokeModelStream))
	mux.HandleFunc("/bedrock/", providerNotFound(d))
}

// bedrockUsage is the token usage of a Converse answer.
type bedrockUsage struct {
	InputTokens  int `json:"inputTokens"`
	OutputTokens int `json:"outputTokens"`
	TotalTokens  int `json:"totalTokens"`
}

// newBedrockUsage returns the usage for input and output tokens.
func newBedrockUsage(input, output int) bedrockUsage {
	return bedrockUsage{InputTokens: input, OutputTokens: output, TotalTokens: input + output}
}

// bedrockMetrics is the metrics block of a Converse answer.
type bedrockMetrics struct {
	LatencyMs int64 `json:"latencyMs"`
}

// sinceMillis returns the milliseconds elapsed since t.
func sinceMillis(t time.Time) int64 {
	return time.Since(t).Milliseconds()
}

// converseRequest is the part of a Converse request the fake uses.
type converseRequest struct {
	Messages        []any `json:"messages"`
	System          []any `json:"system"`
	InferenceConfig *struct {
		MaxTokens *int `json:"maxTokens"`
	} `json:"inferenceConfig"`
}

// validate returns a ValidationException message, "" when the request is valid.
func (r *converseRequest) validate() string {
	if len(r.Messages) == 0 {
		return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
	}
	if r.InferenceConfig != nil && r.InferenceConfig.MaxTokens != nil && *r.InferenceConfig.MaxTokens < 1 {
		return "1 validation error detected: Value '" + strconv.Itoa(*r.InferenceConfig.MaxTokens) +
			"' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1"
	}
	return ""
}

// maxOutput returns the output token limit, 0 for none.
func (r *converseRequest) maxOutput() int {
	if r.InferenceConfig != nil && r.InferenceConfig.MaxTokens != nil {
		return *r.InferenceConfig.MaxTokens
	}
	return 0
}

// converseText is a text content block, and the delta of a stream event.
type converseText struct {
	Text string `json:"text"`
}

// converseMessage is the assistant message of a Converse answer.
type converseMessage struct {
	Role    string         `json:"role"`
	Content []converseText `json:"content"`
}

// converseResponse is a Converse answer.
type converseResponse struct {
	Output struct {
		Message converseMessage `json:"message"`
	} `json:"output"`
	StopReason string         `json:"stopReason"`
	Usage      bedrockUsage   `json:"usage"`
	Metrics    bedrockMetrics `json:"metrics"`
}

// converseStopReason is "max_tokens" when the reply hit the limit, else "end_turn".
func converseStopReason(rep reply) string {
	return anthropicStopReason(rep)
}

// decodeConverse reads and validates a Converse request.
func decodeConverse(w http.ResponseWriter, c *call) (converseRequest, bool) {
	var req converseRequest
	if !c.decode(w, &req) {
		return req, false
	}
	if msg := req.validate(); msg != "" {
		c.badRequest(w, msg)
		return req, false
	}
	return req, true
}

// converse serves POST /model/{modelId}/converse.
func (s *server) converse(w http.ResponseWriter, _ *http.Request, c *call) {
	req, ok := decodeConverse(w, c)
	if !ok {
		return
	}
	rep := newReply(c.opts.chunks, req.maxOutput())
	var resp converseResponse
	resp.Output.Message = converseMessage{Role: "assistant", Content: []converseText{{Text: rep.text}}}
	resp.StopReason = converseStopReason(rep)
	resp.Usage = newBedrockUsage(promptTokens(req.Messages, req.System), rep.tokens)
	resp.Metrics.LatencyMs = sinceMillis(c.start)
	writeJSON(w, http.StatusOK, resp)
}

// converseEvent is the payload of one ConverseStream event; unused fields
// are omitted. P is the padding real Bedrock adds to every event so that
// their sizes do not reveal the text.
type converseEvent struct {
	Role              string          `json:"role,omitempty"`
	ContentBlockIndex *int            `json:"contentBlockIndex,omitempty"`
	Delta             *converseText   `json:"delta,omitempty"`
	StopReason        string          `json:"stopReason,omitempty"`
	Usage             *bedrockUsage   `json:"usage,omitempty"`
	Metrics           *bedrockMetrics `json:"metrics,omitempty"`
	P                 string          `json:"p"`
}

// padded returns e with padding p.
func (e converseEvent) padded(p string) any {
	e.P = p
	return e
}

// converseStream serves POST /model/{modelId}/converse-stream: messageStart,
// contentBlockDelta per piece, contentBlockStop, messageStop and metadata.
func (s *server) converseStream(w http.ResponseWriter, r *http.Request, c *call) {
	req, ok := decodeConverse(w, c)
	if !ok {
		return
	}
	rep := newReply(c.opts.chunks, req.maxOutput())
	es := newEventStream(newStreamer(w, r, contentTypeEventStream, c.opts))
	block := 0
	es.send("messageStart", converseEvent{Role: "assistant"})
	for i, piece := range rep.pieces {
		if i > 0 {
			es.st.pause()
		}
		es.send("contentBlockDelta", converseEvent{ContentBlockIndex: &block, Delta: &converseText{Text: piece}})
		if es.st.failed() {
			return
		}
	}
	es.send("contentBlockStop", converseEvent{ContentBlockIndex: &block})
	es.send("messageStop", converseEvent{StopReason: converseStopReason(rep)})
	usage := newBedrockUsage(promptTokens(req.Messages, req.System), rep.tokens)
	es.send("metadata", converseEvent{Usage: &usage, Metrics: &bedrockMetrics{LatencyMs: sinceMillis(c.start)}})
}

// invokeRequest is an Anthropic Claude body for InvokeModel.
type invokeRequest struct {
	AnthropicVersion string `json:"anthropic_version"`
	MaxTokens        int    `json:"max_tokens"`
	Messages         any    `json:"messages"`
	System           any    `json:"system"`
}

// decodeInvoke reads and validates an Anthropic-on-Bedrock body, answering
// ValidationException in Bedrock's "Malformed input request" wording.
func decodeInvoke(w http.ResponseWriter, c *call) (invokeRequest, bool) {
	var req invokeRequest
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(c.body, &keys); err != nil {
		c.badRequest(w, "Malformed input request: "+err.Error()+", please reformat your input and try again.")
		return req, false
	}
	malformed := func(what string) (invokeRequest, bool) {
		c.badRequest(w, "Malformed input request: #: "+what+", please reformat your input and try again.")
		return req, false
	}
	for _, k := range [...]string{"model", "stream"} {
		if _, ok := keys[k]; ok {
			return malformed("extraneous key [" + k + "] is not permitted")
		}
	}
	for _, k := range [...]string{"anthropic_version", "max_tokens", "messages"} {
		if _, ok := keys[k]; !ok {
			return malformed("required key [" + k + "] not found")
		}
	}
	if !c.decode(w, &req) {
		return req, false
	}
	if req.AnthropicVersion != bedrockAnthropicVersion {
		c.badRequest(w, "invalid anthropic_version "+strconv.Quote(req.AnthropicVersion)+": use "+bedrockAnthropicVersion)
		return req, false
	}
	if req.MaxTokens < 1 {
		return malformed("max_tokens: " + strconv.Itoa(req.MaxTokens) + " is not greater or equal to 1")
	}
	return req, true
}

// invokeMessage builds the Anthropic message answering req for modelID.
func invokeMessage(req invokeRequest, modelID string, rep reply) anthropicMessage {
	stop := anthropicStopReason(rep)
	return anthropicMessage{
		ID:         newID("msg_bdrk_"),
		Type:       "message",
		Role:       "assistant",
		Model:      modelID,
		Content:    []anthropicBlock{{Type: "text", Text: rep.text}},
		StopReason: &stop,
		Usage: anthropicUsage{
			InputTokens:  promptTokens(req.Messages, req.System),
			OutputTokens: rep.tokens,
		},
	}
}

// invokeModel serves POST /model/{modelId}/invoke with an Anthropic Messages
// answer and Bedrock's token count headers.
func (s *server) invokeModel(w http.ResponseWriter, r *http.Request, c *call) {
	req, ok := decodeInvoke(w, c)
	if !ok {
		return
	}
	rep := newReply(c.opts.chunks, req.MaxTokens)
	msg := invokeMessage(req, r.PathValue("modelId"), rep)
	h := w.Header()
	h.Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(msg.Usage.InputTokens))
	h.Set("X-Amzn-Bedrock-Output-Token-Count", strconv.Itoa(msg.Usage.OutputTokens))
	h.Set("X-Amzn-Bedrock-Invocation-Latency", strconv.FormatInt(sinceMillis(c.start), 10))
	writeJSON(w, http.StatusOK, msg)
}

// bedrockInvocationMetrics is what Bedrock adds to the last event of an
// InvokeModelWithResponseStream answer.
type bedrockInvocationMetrics struct {
	InputTokenCount   int   `json:"inputTokenCount"`
	OutputTokenCount  int   `json:"outputTokenCount"`
	InvocationLatency int64 `json:"invocationLatency"`
	FirstByteLatency  int64 `json:"firstByteLatency"`
}

// payloadPart is the payload of a chunk event: a model event, base64-encoded
// by encoding/json, and padding.
type payloadPart struct {
	Bytes []byte `json:"bytes"`
	P     string `json:"p"`
}

// padded returns part with padding p.
func (part payloadPart) padded(p string) any {
	part.P = p
	return part
}

// invokeModelStream serves POST /model/{modelId}/invoke-with-response-stream:
// Anthropic Messages stream events (without ping) wrapped in chunk events,
// the last one carrying the invocation metrics.
func (s *server) invokeModelStream(w http.ResponseWriter, r *http.Request, c *call) {
	req, ok := decodeInvoke(w, c)
	if !ok {
		return
	}
	rep := newReply(c.opts.chunks, req.MaxTokens)
	msg := invokeMessage(req, r.PathValue("modelId"), rep)
	w.Header().Set("X-Amzn-Bedrock-Content-Type", "application/json")
	es := newEventStream(newStreamer(w, r, contentTypeEventStream, c.opts))
	firstByte := int64(-1)
	sendMessageEvents(es.st, msg, rep, false, func(e anthropicEvent) {
		if firstByte < 0 {
			firstByte = sinceMillis(c.start)
		}
		if e.Type == "message_stop" {
			e.InvocationMetrics = &bedrockInvocationMetrics{
				InputTokenCount:   msg.Usage.InputTokens,
				OutputTokenCount:  msg.Usage.OutputTokens,
				InvocationLatency: sinceMillis(c.start),
				FirstByteLatency:  firstByte,
			}
		}
		b, err := json.Marshal(e)
		if err != nil {
			es.st.err = err
			return
		}
		es.send("chunk", payloadPart{Bytes: b})
	})
}

// eventStream writes AWS event-stream messages to a streamer, one message
// per write and flush.
type eventStream struct {
	st  *streamer
	enc *eventstream.Encoder
	buf bytes.Buffer
	seq int
}

// newEventStream returns an event-stream writer over st.
func newEventStream(st *streamer) *eventStream {
	return &eventStream{st: st, enc: eventstream.NewEncoder()}
}

// bedrockPadding is the alphabet the "p" padding of Bedrock events is cut from.
const bedrockPadding = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// paddedEvent is an event payload with a "p" padding field.
type paddedEvent interface {
	padded(p string) any
}

// send writes one event message: headers :event-type, :content-type
// (application/json) and :message-type (event), and v with deterministic
// padding as the JSON payload.
func (es *eventStream) send(eventType string, v paddedEvent) {
	if es.st.failed() {
		return
	}
	es.seq++
	pad := bedrockPadding[:1+(es.seq*7)%(len(bedrockPadding)-1)]
	payload, err := json.Marshal(v.padded(pad))
	if err != nil {
		es.st.err = err
		return
	}
	msg := eventstream.Message{Payload: payload}
	msg.Headers.Set(":event-type", eventstream.StringValue(eventType))
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Headers.Set(":message-type", eventstream.StringValue("event"))
	es.buf.Reset()
	if err := es.enc.Encode(&es.buf, msg); err != nil {
		es.st.err = err
		return
	}
	es.st.raw(es.buf.Bytes())
}
