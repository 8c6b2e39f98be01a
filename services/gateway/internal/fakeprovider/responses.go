package fakeprovider

import (
	"net/http"
	"time"
)

// responsesRequest is the part of a Responses API request the fake uses.
type responsesRequest struct {
	Model              string         `json:"model"`
	Input              any            `json:"input"`
	Instructions       any            `json:"instructions"`
	Stream             bool           `json:"stream"`
	MaxOutputTokens    *int           `json:"max_output_tokens"`
	Temperature        *float64       `json:"temperature"`
	TopP               *float64       `json:"top_p"`
	Store              *bool          `json:"store"`
	PreviousResponseID *string        `json:"previous_response_id"`
	Metadata           map[string]any `json:"metadata"`
}

// responseObject is a Responses API response.
type responseObject struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	Error              *struct{}          `json:"error"`
	IncompleteDetails  *incompleteDetails `json:"incomplete_details"`
	Instructions       any                `json:"instructions"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []responseMessage  `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          reasoningConfig    `json:"reasoning"`
	ServiceTier        string             `json:"service_tier"`
	Store              bool               `json:"store"`
	Temperature        float64            `json:"temperature"`
	Text               textConfig         `json:"text"`
	ToolChoice         string             `json:"tool_choice"`
	Tools              []struct{}         `json:"tools"`
	TopP               float64            `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *responsesUsage    `json:"usage"`
	User               *string            `json:"user"`
	Metadata           map[string]any     `json:"metadata"`
}

// incompleteDetails explains why a response is incomplete.
type incompleteDetails struct {
	Reason string `json:"reason"`
}

// reasoningConfig is the (empty) reasoning configuration echoed back.
type reasoningConfig struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// textConfig is the text output configuration echoed back.
type textConfig struct {
	Format struct {
		Type string `json:"type"`
	} `json:"format"`
}

// responseMessage is the assistant message output item.
type responseMessage struct {
	ID      string       `json:"id"`
	Type    string       `json:"type"`
	Status  string       `json:"status"`
	Role    string       `json:"role"`
	Content []outputText `json:"content"`
}

// outputText is an output_text content part.
type outputText struct {
	Type        string     `json:"type"`
	Text        string     `json:"text"`
	Annotations []struct{} `json:"annotations"`
	Logprobs    []struct{} `json:"logprobs"`
}

// responsesUsage is the usage block of a Responses API response.
type responsesUsage struct {
	InputTokens         int                  `json:"input_tokens"`
	InputTokensDetails  inputTokensDetails   `json:"input_tokens_details"`
	OutputTokens        int                  `json:"output_tokens"`
	OutputTokensDetails reasoningTokenDetail `json:"output_tokens_details"`
	TotalTokens         int                  `json:"total_tokens"`
}

// inputTokensDetails breaks down input tokens.
type inputTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// reasoningTokenDetail breaks down output tokens.
type reasoningTokenDetail struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// responseBuilder produces the successive states of one response.
type responseBuilder struct {
	req     *responsesRequest
	id      string
	msgID   string
	model   string
	created int64
	rep     reply
	usage   responsesUsage
}

// responses serves POST /responses, JSON or SSE.
func (s *server) responses(w http.ResponseWriter, r *http.Request, c *call) {
	var req responsesRequest
	if !c.decode(w, &req) {
		return
	}
	if req.Model == "" {
		c.fail(w, apiError{
			status:  http.StatusBadRequest,
			message: "Missing required parameter: 'model'.",
			param:   "model",
			code:    "missing_required_parameter",
		})
		return
	}
	maxOut := 0
	if req.MaxOutputTokens != nil {
		maxOut = *req.MaxOutputTokens
	}
	rep := newReply(c.opts.chunks, maxOut)
	in := promptTokens(req.Input, req.Instructions)
	b := &responseBuilder{
		req:     &req,
		id:      newID("resp_"),
		msgID:   newID("msg_"),
		model:   req.Model,
		created: time.Now().Unix(),
		rep:     rep,
		usage:   responsesUsage{InputTokens: in, OutputTokens: rep.tokens, TotalTokens: in + rep.tokens},
	}
	if req.Stream {
		streamResponse(newStreamer(w, r, contentTypeSSE, c.opts), b)
		return
	}
	writeJSON(w, http.StatusOK, b.final())
}

// finalStatus is "incomplete" when the reply hit max_output_tokens.
func (b *responseBuilder) finalStatus() string {
	if b.rep.truncated {
		return "incomplete"
	}
	return "completed"
}

// object returns the response in the given status with output and usage.
func (b *responseBuilder) object(status string, output []responseMessage, usage *responsesUsage) responseObject {
	o := responseObject{
		ID:                 b.id,
		Object:             "response",
		CreatedAt:          b.created,
		Status:             status,
		Instructions:       b.req.Instructions,
		MaxOutputTokens:    b.req.MaxOutputTokens,
		Model:              b.model,
		Output:             output,
		ParallelToolCalls:  true,
		PreviousResponseID: b.req.PreviousResponseID,
		ServiceTier:        "default",
		Store:              b.req.Store == nil || *b.req.Store,
		Temperature:        valueOr(b.req.Temperature, 1),
		ToolChoice:         "auto",
		Tools:              []struct{}{},
		TopP:               valueOr(b.req.TopP, 1),
		Truncation:         "disabled",
		Usage:              usage,
		Metadata:           b.req.Metadata,
	}
	o.Text.Format.Type = "text"
	if o.Metadata == nil {
		o.Metadata = map[string]any{}
	}
	if status == "incomplete" {
		o.IncompleteDetails = &incompleteDetails{Reason: "max_output_tokens"}
	}
	return o
}

// final returns the finished response.
func (b *responseBuilder) final() responseObject {
	usage := b.usage
	return b.object(b.finalStatus(), []responseMessage{b.message(b.finalStatus(), b.rep.text)}, &usage)
}

// message returns the output message item with the given status and text.
func (b *responseBuilder) message(status, text string) responseMessage {
	m := responseMessage{ID: b.msgID, Type: "message", Status: status, Role: "assistant", Content: []outputText{}}
	if status != "in_progress" {
		m.Content = []outputText{newOutputText(text)}
	}
	return m
}

// newOutputText returns an output_text part holding text.
func newOutputText(text string) outputText {
	return outputText{Type: "output_text", Text: text, Annotations: []struct{}{}, Logprobs: []struct{}{}}
}

// valueOr returns *p, or def when p is nil.
func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// responseEvent is one Responses API stream event; unused fields are omitted.
type responseEvent struct {
	Type           string           `json:"type"`
	SequenceNumber int              `json:"sequence_number"`
	Response       *responseObject  `json:"response,omitempty"`
	ItemID         string           `json:"item_id,omitempty"`
	OutputIndex    *int             `json:"output_index,omitempty"`
	ContentIndex   *int             `json:"content_index,omitempty"`
	Item           *responseMessage `json:"item,omitempty"`
	Part           *outputText      `json:"part,omitempty"`
	Delta          *string          `json:"delta,omitempty"`
	Text           *string          `json:"text,omitempty"`
	Logprobs       *[]struct{}      `json:"logprobs,omitempty"`
}

// responseStream writes the numbered events of one response stream.
type responseStream struct {
	st  *streamer
	b   *responseBuilder
	seq int
}

// send numbers e and writes it as an SSE event named after its type.
func (rs *responseStream) send(e responseEvent) {
	e.SequenceNumber = rs.seq
	rs.seq++
	rs.st.event(e.Type, e)
}

// lifecycle sends an event carrying the whole response.
func (rs *responseStream) lifecycle(typ string, resp responseObject) {
	rs.send(responseEvent{Type: typ, Response: &resp})
}

// itemEvent sends an event about the output message item.
func (rs *responseStream) itemEvent(typ string, item responseMessage) {
	index := 0
	rs.send(responseEvent{Type: typ, OutputIndex: &index, Item: &item})
}

// partEvent sends an event about the text part of the output message; e
// supplies the event-specific fields.
func (rs *responseStream) partEvent(typ string, e responseEvent) {
	index := 0
	e.Type, e.ItemID, e.OutputIndex, e.ContentIndex = typ, rs.b.msgID, &index, &index
	rs.send(e)
}

// streamResponse sends a response as Responses API events, from
// response.created to response.completed (or response.incomplete).
func streamResponse(st *streamer, b *responseBuilder) {
	rs := &responseStream{st: st, b: b}
	noLogprobs := &[]struct{}{}
	rs.lifecycle("response.created", b.object("in_progress", []responseMessage{}, nil))
	rs.lifecycle("response.in_progress", b.object("in_progress", []responseMessage{}, nil))
	rs.itemEvent("response.output_item.added", b.message("in_progress", ""))
	empty := newOutputText("")
	rs.partEvent("response.content_part.added", responseEvent{Part: &empty})
	for i, piece := range b.rep.pieces {
		if i > 0 {
			st.pause()
		}
		rs.partEvent("response.output_text.delta", responseEvent{Delta: &piece, Logprobs: noLogprobs})
		if st.failed() {
			return
		}
	}
	full := newOutputText(b.rep.text)
	rs.partEvent("response.output_text.done", responseEvent{Text: &b.rep.text, Logprobs: noLogprobs})
	rs.partEvent("response.content_part.done", responseEvent{Part: &full})
	rs.itemEvent("response.output_item.done", b.message(b.finalStatus(), b.rep.text))
	rs.lifecycle("response."+b.finalStatus(), b.final())
}
