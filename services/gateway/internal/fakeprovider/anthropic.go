package fakeprovider

import (
	"net/http"
	"strings"
)

// mountAnthropic registers the Anthropic routes under /anthropic/v1.
func (s *server) mountAnthropic(mux *http.ServeMux) {
	d := anthropicDialect()
	const p = "/anthropic/v1"
	mux.HandleFunc("POST "+p+"/messages", s.handle(d, s.messages))
	mux.HandleFunc("POST "+p+"/messages/count_tokens", s.handle(d, countAnthropicTokens))
	mux.HandleFunc("GET "+p+"/models", s.handle(d, anthropicModels))
	mux.HandleFunc("GET "+p+"/models/{id}", s.handle(d, anthropicModel))
	mux.HandleFunc("/anthropic/", providerNotFound(d))
}

// messagesRequest is the part of a Messages API request the fake uses.
type messagesRequest struct {
	Model     string `json:"model"`
	Messages  any    `json:"messages"`
	System    any    `json:"system"`
	MaxTokens int    `json:"max_tokens"`
	Stream    bool   `json:"stream"`
}

// promptTokens counts the input tokens of the request.
func (r *messagesRequest) promptTokens() int {
	return promptTokens(r.Messages, r.System)
}

// validate checks the required fields, returning a message when one is missing.
func (r *messagesRequest) validate() string {
	switch {
	case r.Model == "":
		return "model: Field required"
	case r.Messages == nil:
		return "messages: Field required"
	}
	return ""
}

// anthropicMessage is a Messages API response.
type anthropicMessage struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []anthropicBlock `json:"content"`
	StopReason   *string          `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        anthropicUsage   `json:"usage"`
}

// anthropicBlock is a text content block.
type anthropicBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// anthropicUsage is the usage block of a message.
type anthropicUsage struct {
	InputTokens              int    `json:"input_tokens"`
	CacheCreationInputTokens int    `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int    `json:"cache_read_input_tokens"`
	OutputTokens             int    `json:"output_tokens"`
	ServiceTier              string `json:"service_tier,omitempty"` // not reported by Bedrock
}

// messages serves POST /messages, JSON or SSE.
func (s *server) messages(w http.ResponseWriter, r *http.Request, c *call) {
	var req messagesRequest
	if !c.decode(w, &req) {
		return
	}
	if msg := req.validate(); msg != "" {
		c.badRequest(w, msg)
		return
	}
	rep := newReply(c.opts.chunks, req.MaxTokens)
	msg := anthropicMessage{
		ID:      newID("msg_"),
		Type:    "message",
		Role:    "assistant",
		Model:   req.Model,
		Content: []anthropicBlock{{Type: "text", Text: rep.text}},
		Usage: anthropicUsage{
			InputTokens:  req.promptTokens(),
			OutputTokens: rep.tokens,
			ServiceTier:  "standard",
		},
	}
	stop := anthropicStopReason(rep)
	msg.StopReason = &stop
	if req.Stream {
		streamMessage(newStreamer(w, r, contentTypeSSE, c.opts), msg, rep)
		return
	}
	writeJSON(w, http.StatusOK, msg)
}

// anthropicStopReason is "max_tokens" when the reply hit the limit, else "end_turn".
func anthropicStopReason(rep reply) string {
	if rep.truncated {
		return "max_tokens"
	}
	return "end_turn"
}

// anthropicEvent is one Messages API stream event; unused fields are omitted.
type anthropicEvent struct {
	Type         string            `json:"type"`
	Message      *anthropicMessage `json:"message,omitempty"`
	Index        *int              `json:"index,omitempty"`
	ContentBlock *anthropicBlock   `json:"content_block,omitempty"`
	Delta        any               `json:"delta,omitempty"`
	Usage        *deltaUsage       `json:"usage,omitempty"`
	// InvocationMetrics is added by Bedrock to the last event of a stream.
	InvocationMetrics *bedrockInvocationMetrics `json:"amazon-bedrock-invocationMetrics,omitempty"`
}

// textDelta is the delta of a content_block_delta event.
type textDelta struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// messageDelta is the delta of a message_delta event.
type messageDelta struct {
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

// deltaUsage is the cumulative usage of a message_delta event.
type deltaUsage struct {
	OutputTokens int `json:"output_tokens"`
}

// streamMessage sends msg as Messages API server-sent events.
func streamMessage(st *streamer, msg anthropicMessage, rep reply) {
	sendMessageEvents(st, msg, rep, true, func(e anthropicEvent) { st.event(e.Type, e) })
}

// sendMessageEvents passes msg to send as Messages API events:
// message_start, content_block_start, ping (when ping is set),
// content_block_delta per piece with the stream's chunk delay in between,
// content_block_stop, message_delta and message_stop. It stops early once st
// has failed.
func sendMessageEvents(st *streamer, msg anthropicMessage, rep reply, ping bool, send func(anthropicEvent)) {
	block := 0
	start := msg
	start.Content = []anthropicBlock{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	send(anthropicEvent{Type: "message_start", Message: &start})
	send(anthropicEvent{Type: "content_block_start", Index: &block, ContentBlock: &anthropicBlock{Type: "text"}})
	if ping {
		send(anthropicEvent{Type: "ping"})
	}
	for i, piece := range rep.pieces {
		if i > 0 {
			st.pause()
		}
		send(anthropicEvent{Type: "content_block_delta", Index: &block, Delta: textDelta{Type: "text_delta", Text: piece}})
		if st.failed() {
			return
		}
	}
	send(anthropicEvent{Type: "content_block_stop", Index: &block})
	send(anthropicEvent{
		Type:  "message_delta",
		Delta: messageDelta{StopReason: *msg.StopReason},
		Usage: &deltaUsage{OutputTokens: msg.Usage.OutputTokens},
	})
	send(anthropicEvent{Type: "message_stop"})
}

// countAnthropicTokens serves POST /messages/count_tokens.
func countAnthropicTokens(w http.ResponseWriter, r *http.Request, c *call) {
	var req messagesRequest
	if !c.decode(w, &req) {
		return
	}
	if msg := req.validate(); msg != "" {
		c.badRequest(w, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"input_tokens": req.promptTokens()})
}

// anthropicModelInfo is one entry of GET /models.
type anthropicModelInfo struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// anthropicModelList is the GET /models response.
type anthropicModelList struct {
	Data    []anthropicModelInfo `json:"data"`
	HasMore bool                 `json:"has_more"`
	FirstID *string              `json:"first_id"`
	LastID  *string              `json:"last_id"`
}

// anthropicModels serves GET /models with a fixed catalogue.
func anthropicModels(w http.ResponseWriter, _ *http.Request, _ *call) {
	ids := []string{
		"claude-opus-4-1-20250805", "claude-sonnet-4-20250514",
		"claude-3-7-sonnet-20250219", "claude-3-5-haiku-20241022",
	}
	list := anthropicModelList{Data: make([]anthropicModelInfo, len(ids))}
	for i, id := range ids {
		list.Data[i] = newAnthropicModel(id)
	}
	list.FirstID, list.LastID = &ids[0], &ids[len(ids)-1]
	writeJSON(w, http.StatusOK, list)
}

// anthropicModel serves GET /models/{id}; every id exists in the fake.
func anthropicModel(w http.ResponseWriter, r *http.Request, _ *call) {
	writeJSON(w, http.StatusOK, newAnthropicModel(r.PathValue("id")))
}

// newAnthropicModel describes model id.
func newAnthropicModel(id string) anthropicModelInfo {
	name := strings.ReplaceAll(strings.TrimPrefix(id, "claude-"), "-", " ")
	return anthropicModelInfo{
		Type:        "model",
		ID:          id,
		DisplayName: "Claude " + name,
		CreatedAt:   "2025-05-14T00:00:00Z",
	}
}
