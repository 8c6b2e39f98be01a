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
	if !c.decode(w, r, &req) {
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
		streamResponse(newStreamer(w, r, contentTypeSSE, c.opts.chunkDelay), b)
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

// responseEvents numbers the events of one response stream.
type responseEvents struct {
	st  *streamer
	seq int
}

// send writes one event named typ; fields are merged with type and sequence_number.
func (e *responseEvents) send(typ string, fields map[string]any) {
	fields["type"] = typ
	fields["sequence_number"] = e.seq
	e.seq++
	e.st.event(typ, fields)
}

// streamResponse sends a response as Responses API events, from
// response.created to response.completed (or response.incomplete).
func streamResponse(st *streamer, b *responseBuilder) {
	ev := &responseEvents{st: st}
	// with adds the item, output and content indexes of the single text part.
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{"item_id": b.msgID, "output_index": 0, "content_index": 0}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	ev.send("response.created", map[string]any{"response": b.object("in_progress", []responseMessage{}, nil)})
	ev.send("response.in_progress", map[string]any{"response": b.object("in_progress", []responseMessage{}, nil)})
	ev.send("response.output_item.added", map[string]any{"output_index": 0, "item": b.message("in_progress", "")})
	ev.send("response.content_part.added", with(map[string]any{"part": newOutputText("")}))
	for i, piece := range b.rep.pieces {
		if i > 0 {
			st.pause()
		}
		ev.send("response.output_text.delta", with(map[string]any{"delta": piece, "logprobs": []struct{}{}}))
		if st.failed() {
			return
		}
	}
	ev.send("response.output_text.done", with(map[string]any{"text": b.rep.text, "logprobs": []struct{}{}}))
	ev.send("response.content_part.done", with(map[string]any{"part": newOutputText(b.rep.text)}))
	ev.send("response.output_item.done", map[string]any{"output_index": 0, "item": b.message(b.finalStatus(), b.rep.text)})
	ev.send("response."+b.finalStatus(), map[string]any{"response": b.final()})
}
