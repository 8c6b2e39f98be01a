package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// systemFingerprint is reported in chat completions like the real API does.
const systemFingerprint = "fp_fakeprov01"

// mountOpenAI registers the OpenAI routes under /openai/v1.
func (s *server) mountOpenAI(mux *http.ServeMux) {
	d := openAIDialect()
	const p = "/openai/v1"
	mux.HandleFunc("POST "+p+"/chat/completions", s.handle(d, s.chatCompletions))
	mux.HandleFunc("POST "+p+"/embeddings", s.handle(d, s.embeddings))
	mux.HandleFunc("GET "+p+"/models", s.handle(d, openAIModels))
	mux.HandleFunc("GET "+p+"/models/{id}", s.handle(d, openAIModel))
	mux.HandleFunc("POST "+p+"/responses", s.handle(d, s.responses))
	mux.HandleFunc("/openai/", providerNotFound(d))
}

// mountAzure registers the Azure OpenAI routes under
// /azure/{resource}/openai/deployments/{deployment}. The deployment name is
// used as the model.
func (s *server) mountAzure(mux *http.ServeMux) {
	d := azureDialect()
	const p = "/azure/{resource}/openai/deployments/{deployment}"
	mux.HandleFunc("POST "+p+"/chat/completions", s.handle(d, azureDeployment(s.chatCompletions)))
	mux.HandleFunc("POST "+p+"/embeddings", s.handle(d, azureDeployment(s.embeddings)))
	mux.HandleFunc("/azure/", providerNotFound(d))
}

// azureDeployment makes ep answer with the deployment name as the model.
func azureDeployment(ep endpoint) endpoint {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		c.model = r.PathValue("deployment")
		ep(w, r, c)
	}
}

// chatRequest is the part of a chat completion request the fake uses.
type chatRequest struct {
	Model               string `json:"model"`
	Messages            any    `json:"messages"`
	Stream              bool   `json:"stream"`
	MaxTokens           int    `json:"max_tokens"`
	MaxCompletionTokens int    `json:"max_completion_tokens"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// includeUsage reports whether the final usage chunk was requested.
func (r *chatRequest) includeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// maxOutput returns the output token limit, 0 for none.
func (r *chatRequest) maxOutput() int {
	if r.MaxCompletionTokens > 0 {
		return r.MaxCompletionTokens
	}
	return r.MaxTokens
}

// openAIUsage is the usage block of chat completions.
type openAIUsage struct {
	PromptTokens            int                `json:"prompt_tokens"`
	CompletionTokens        int                `json:"completion_tokens"`
	TotalTokens             int                `json:"total_tokens"`
	PromptTokensDetails     promptTokenDetails `json:"prompt_tokens_details"`
	CompletionTokensDetails outputTokenDetails `json:"completion_tokens_details"`
}

// promptTokenDetails breaks down prompt tokens.
type promptTokenDetails struct {
	CachedTokens int `json:"cached_tokens"`
	AudioTokens  int `json:"audio_tokens"`
}

// outputTokenDetails breaks down completion tokens.
type outputTokenDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AudioTokens              int `json:"audio_tokens"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
}

// newOpenAIUsage returns the usage for prompt and completion token counts.
func newOpenAIUsage(prompt, completion int) openAIUsage {
	return openAIUsage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

// chatCompletion is a non-streamed chat completion.
type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             openAIUsage  `json:"usage"`
	ServiceTier       string       `json:"service_tier"`
	SystemFingerprint string       `json:"system_fingerprint"`
}

// chatChoice is one choice of a chat completion.
type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

// chatMessage is the assistant message of a chat completion.
type chatMessage struct {
	Role        string     `json:"role"`
	Content     string     `json:"content"`
	Refusal     *string    `json:"refusal"`
	Annotations []struct{} `json:"annotations"`
}

// chatChunk is one chat.completion.chunk of a stream.
type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	ServiceTier       string        `json:"service_tier"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is omitted unless stream_options.include_usage is set; then it is
	// null on every chunk but the last.
	Usage json.RawMessage `json:"usage,omitempty"`
}

// chunkChoice is the choice of one stream chunk.
type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

// chunkDelta is the incremental message of one stream chunk.
type chunkDelta struct {
	Role    string          `json:"role,omitempty"`
	Content *string         `json:"content,omitempty"`
	Refusal json.RawMessage `json:"refusal,omitempty"`
}

// chatMeta identifies one completion across its chunks.
type chatMeta struct {
	id      string
	created int64
	model   string
}

// chatCompletions serves POST /chat/completions, JSON or SSE.
func (s *server) chatCompletions(w http.ResponseWriter, r *http.Request, c *call) {
	var req chatRequest
	if !c.decode(w, &req) {
		return
	}
	model := c.modelOr(req.Model)
	if model == "" {
		c.badRequest(w, "you must provide a model parameter")
		return
	}
	if req.Messages == nil {
		c.fail(w, apiError{
			status:  http.StatusBadRequest,
			message: "Missing required parameter: 'messages'.",
			param:   "messages",
			code:    "missing_required_parameter",
		})
		return
	}
	rep := newReply(c.opts.chunks, req.maxOutput())
	usage := newOpenAIUsage(promptTokens(req.Messages), rep.tokens)
	meta := chatMeta{id: newID("chatcmpl-"), created: time.Now().Unix(), model: model}
	if req.Stream {
		streamChat(newStreamer(w, r, contentTypeSSE, c.opts), meta, rep, usage, req.includeUsage())
		return
	}
	writeJSON(w, http.StatusOK, chatCompletion{
		ID:      meta.id,
		Object:  "chat.completion",
		Created: meta.created,
		Model:   model,
		Choices: []chatChoice{{
			Message:      chatMessage{Role: "assistant", Content: rep.text, Annotations: []struct{}{}},
			FinishReason: chatFinishReason(rep),
		}},
		Usage:             usage,
		ServiceTier:       "default",
		SystemFingerprint: systemFingerprint,
	})
}

// chatFinishReason is "length" when the reply hit the token limit, else "stop".
func chatFinishReason(rep reply) string {
	if rep.truncated {
		return "length"
	}
	return "stop"
}

// streamChat sends a chat completion as chat.completion.chunk events: a role
// chunk, one chunk per content piece, a finish chunk, the usage chunk when
// requested, then [DONE].
func streamChat(st *streamer, m chatMeta, rep reply, usage openAIUsage, includeUsage bool) {
	var usageField json.RawMessage
	if includeUsage {
		usageField = json.RawMessage("null")
	}
	chunk := func(delta chunkDelta, finish *string) chatChunk {
		return m.chunk([]chunkChoice{{Delta: delta, FinishReason: finish}}, usageField)
	}
	empty := ""
	st.data(chunk(chunkDelta{Role: "assistant", Content: &empty, Refusal: json.RawMessage("null")}, nil), "\n\n")
	for i, piece := range rep.pieces {
		if i > 0 {
			st.pause()
		}
		st.data(chunk(chunkDelta{Content: &piece}, nil), "\n\n")
		if st.failed() {
			return
		}
	}
	finish := chatFinishReason(rep)
	st.data(chunk(chunkDelta{}, &finish), "\n\n")
	if includeUsage {
		b, _ := json.Marshal(usage)
		st.data(m.chunk([]chunkChoice{}, b), "\n\n")
	}
	st.raw([]byte("data: [DONE]\n\n"))
}

// chunk builds one chat.completion.chunk of the completion m.
func (m chatMeta) chunk(choices []chunkChoice, usage json.RawMessage) chatChunk {
	return chatChunk{
		ID:                m.id,
		Object:            "chat.completion.chunk",
		Created:           m.created,
		Model:             m.model,
		ServiceTier:       "default",
		SystemFingerprint: systemFingerprint,
		Choices:           choices,
		Usage:             usage,
	}
}

// embeddingsRequest is the part of an embeddings request the fake uses.
type embeddingsRequest struct {
	Model          string `json:"model"`
	Input          any    `json:"input"`
	EncodingFormat string `json:"encoding_format"`
	Dimensions     int    `json:"dimensions"`
}

// embeddingInput is one input of an embeddings request.
type embeddingInput struct {
	seed   string // what the vector is derived from
	tokens int
}

// embeddingList is the embeddings response.
type embeddingList struct {
	Object string          `json:"object"`
	Data   []embeddingItem `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

// embeddingItem is one embedding: a float array or a base64 string.
type embeddingItem struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

// embeddingUsage is the usage block of an embeddings response.
type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// embeddings serves POST /embeddings with float or base64 vectors.
func (s *server) embeddings(w http.ResponseWriter, r *http.Request, c *call) {
	var req embeddingsRequest
	if !c.decode(w, &req) {
		return
	}
	model := c.modelOr(req.Model)
	if model == "" {
		c.badRequest(w, "you must provide a model parameter")
		return
	}
	inputs, err := embeddingInputs(req.Input)
	if err != nil {
		c.fail(w, apiError{status: http.StatusBadRequest, message: err.Error(), param: "input"})
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		c.fail(w, apiError{
			status:  http.StatusBadRequest,
			message: fmt.Sprintf("Invalid value for 'encoding_format': %q. Supported values are 'float' and 'base64'.", req.EncodingFormat),
			param:   "encoding_format",
		})
		return
	}
	dims := dimensionsOr(req.Dimensions, openAIEmbeddingDims(model))
	resp := embeddingList{Object: "list", Model: model, Data: make([]embeddingItem, len(inputs))}
	for i, in := range inputs {
		vec := embedVector(in.seed, dims)
		var emb any = vec
		if req.EncodingFormat == "base64" {
			emb = float32Base64(vec)
		}
		resp.Data[i] = embeddingItem{Object: "embedding", Index: i, Embedding: emb}
		resp.Usage.PromptTokens += in.tokens
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	writeJSON(w, http.StatusOK, resp)
}

// openAIEmbeddingDims is the native vector size of an embedding model.
func openAIEmbeddingDims(model string) int {
	if strings.Contains(model, "large") {
		return 3072
	}
	return 1536
}

// errInvalidInput is OpenAI's message for an input it cannot embed.
const errInvalidInput = inputError("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")

// inputError is an invalid embeddings input.
type inputError string

// Error returns the message.
func (e inputError) Error() string { return string(e) }

// embeddingInputs normalizes the input of an embeddings request: a string,
// an array of strings, an array of token ids or an array of token id arrays.
func embeddingInputs(v any) ([]embeddingInput, error) {
	switch t := v.(type) {
	case string:
		return []embeddingInput{textInput(t)}, nil
	case []any:
		if len(t) == 0 {
			break
		}
		if _, ok := t[0].(float64); ok {
			return tokenInput(t)
		}
		inputs := make([]embeddingInput, 0, len(t))
		for _, e := range t {
			in, err := oneEmbeddingInput(e)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, in)
		}
		return inputs, nil
	}
	return nil, errInvalidInput
}

// oneEmbeddingInput converts one element of an input array.
func oneEmbeddingInput(v any) (embeddingInput, error) {
	switch t := v.(type) {
	case string:
		return textInput(t), nil
	case []any:
		ins, err := tokenInput(t)
		if err != nil {
			return embeddingInput{}, err
		}
		return ins[0], nil
	}
	return embeddingInput{}, errInvalidInput
}

// textInput is a text input: ceil(chars/4) tokens.
func textInput(s string) embeddingInput {
	return embeddingInput{seed: s, tokens: promptTokens(s)}
}

// tokenInput is a token id array input: one token per id.
func tokenInput(ids []any) ([]embeddingInput, error) {
	var b strings.Builder
	for _, id := range ids {
		f, ok := id.(float64)
		if !ok {
			return nil, errInvalidInput
		}
		fmt.Fprintf(&b, "%d,", int64(f))
	}
	if len(ids) == 0 {
		return nil, errInvalidInput
	}
	return []embeddingInput{{seed: b.String(), tokens: len(ids)}}, nil
}

// openAIModelObject is one entry of GET /models.
type openAIModelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// openAIModelList is the GET /models response.
type openAIModelList struct {
	Object string              `json:"object"`
	Data   []openAIModelObject `json:"data"`
}

// openAIModels serves GET /models with a fixed catalogue.
func openAIModels(w http.ResponseWriter, _ *http.Request, _ *call) {
	ids := []string{
		"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3-mini",
		"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
	}
	list := openAIModelList{Object: "list", Data: make([]openAIModelObject, len(ids))}
	for i, id := range ids {
		list.Data[i] = newOpenAIModel(id)
	}
	writeJSON(w, http.StatusOK, list)
}

// openAIModel serves GET /models/{id}; every id exists in the fake.
func openAIModel(w http.ResponseWriter, r *http.Request, _ *call) {
	writeJSON(w, http.StatusOK, newOpenAIModel(r.PathValue("id")))
}

// newOpenAIModel describes model id.
func newOpenAIModel(id string) openAIModelObject {
	return openAIModelObject{ID: id, Object: "model", Created: 1715367049, OwnedBy: "system"}
}
