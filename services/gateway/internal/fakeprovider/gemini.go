package fakeprovider

import (
	"net/http"
	"strings"
)

// mountGemini registers the Gemini routes under /google/v1beta. ServeMux
// cannot split "{model}:method", so POSTs go through geminiModelCall.
func (s *server) mountGemini(mux *http.ServeMux) {
	d := geminiDialect()
	const p = "/google/v1beta"
	mux.HandleFunc("GET "+p+"/models", s.handle(d, geminiModels))
	mux.HandleFunc("GET "+p+"/models/{model}", s.handle(d, geminiModel))
	mux.HandleFunc("POST "+p+"/models/{call}", s.handle(d, s.geminiModelCall))
	mux.HandleFunc("/google/", providerNotFound(d))
}

// geminiModelCall dispatches POST /models/{model}:{method}.
func (s *server) geminiModelCall(w http.ResponseWriter, r *http.Request, c *call) {
	model, method := splitModelMethod(r.PathValue("call"))
	if model == "" {
		c.fail(w, apiError{status: http.StatusNotFound, message: "Invalid model call: " + r.PathValue("call")})
		return
	}
	switch method {
	case "generateContent":
		s.generateContent(w, r, c, model, streamNone)
	case "streamGenerateContent":
		mode := streamJSONArray
		if r.URL.Query().Get("alt") == "sse" {
			mode = streamSSE
		}
		s.generateContent(w, r, c, model, mode)
	case "countTokens":
		countGeminiTokens(w, r, c)
	case "embedContent":
		embedContent(w, r, c, model)
	case "batchEmbedContents":
		batchEmbedContents(w, r, c, model)
	default:
		c.fail(w, apiError{status: http.StatusNotFound, message: "Method not found: " + method})
	}
}

// splitModelMethod splits "gemini-2.0-flash:generateContent" at its last colon.
func splitModelMethod(segment string) (model, method string) {
	i := strings.LastIndexByte(segment, ':')
	if i < 0 {
		return "", ""
	}
	return segment[:i], segment[i+1:]
}

// streamMode is how generateContent answers.
type streamMode int

const (
	streamNone      streamMode = iota // one JSON response
	streamSSE                         // alt=sse: data: {...}\r\n\r\n per chunk
	streamJSONArray                   // a JSON array of responses, written progressively
)

// geminiRequest is the part of a GenerateContentRequest the fake uses. Both
// the camelCase and snake_case spellings of the proto JSON are accepted.
type geminiRequest struct {
	Contents               any               `json:"contents"`
	SystemInstruction      any               `json:"systemInstruction"`
	SystemInstructionSnake any               `json:"system_instruction"`
	GenerationConfig       *generationConfig `json:"generationConfig"`
	GenerationConfigSnake  *generationConfig `json:"generation_config"`
}

// generationConfig is the part of the generation config the fake uses.
type generationConfig struct {
	MaxOutputTokens      int `json:"maxOutputTokens"`
	MaxOutputTokensSnake int `json:"max_output_tokens"`
}

// promptTokens counts the tokens of the contents and system instruction.
func (r *geminiRequest) promptTokens() int {
	return promptTokens(r.Contents, r.SystemInstruction, r.SystemInstructionSnake)
}

// maxOutput returns the output token limit, 0 for none.
func (r *geminiRequest) maxOutput() int {
	for _, g := range []*generationConfig{r.GenerationConfig, r.GenerationConfigSnake} {
		if g != nil && g.MaxOutputTokens > 0 {
			return g.MaxOutputTokens
		}
		if g != nil && g.MaxOutputTokensSnake > 0 {
			return g.MaxOutputTokensSnake
		}
	}
	return 0
}

// geminiResponse is a GenerateContentResponse.
type geminiResponse struct {
	Candidates    []geminiCandidate `json:"candidates"`
	UsageMetadata geminiUsage       `json:"usageMetadata"`
	ModelVersion  string            `json:"modelVersion"`
	ResponseID    string            `json:"responseId"`
}

// geminiCandidate is one candidate of a response.
type geminiCandidate struct {
	Content      geminiContent `json:"content"`
	FinishReason string        `json:"finishReason,omitempty"`
	Index        int           `json:"index"`
}

// geminiContent is a model turn.
type geminiContent struct {
	Parts []geminiPart `json:"parts"`
	Role  string       `json:"role"`
}

// geminiPart is a text part.
type geminiPart struct {
	Text string `json:"text"`
}

// geminiUsage is the usageMetadata of a response. Stream chunks before the
// last carry only the prompt count.
type geminiUsage struct {
	PromptTokenCount     int             `json:"promptTokenCount"`
	CandidatesTokenCount int             `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount      int             `json:"totalTokenCount"`
	PromptTokensDetails  []modalityCount `json:"promptTokensDetails"`
}

// modalityCount is a per-modality token count.
type modalityCount struct {
	Modality   string `json:"modality"`
	TokenCount int    `json:"tokenCount"`
}

// newGeminiUsage returns the usage metadata for prompt and candidate tokens.
func newGeminiUsage(prompt, candidates int) geminiUsage {
	return geminiUsage{
		PromptTokenCount:     prompt,
		CandidatesTokenCount: candidates,
		TotalTokenCount:      prompt + candidates,
		PromptTokensDetails:  []modalityCount{{Modality: "TEXT", TokenCount: prompt}},
	}
}

// geminiReply identifies one generation across its chunks.
type geminiReply struct {
	model  string
	id     string
	prompt int
	rep    reply
}

// chunk returns the response for text; the last chunk carries the finish
// reason and the complete usage.
func (g geminiReply) chunk(text string, last bool) geminiResponse {
	cand := geminiCandidate{Content: geminiContent{Parts: []geminiPart{{Text: text}}, Role: "model"}}
	usage := newGeminiUsage(g.prompt, 0)
	if last {
		cand.FinishReason = "STOP"
		if g.rep.truncated {
			cand.FinishReason = "MAX_TOKENS"
		}
		usage = newGeminiUsage(g.prompt, g.rep.tokens)
	}
	return geminiResponse{
		Candidates:    []geminiCandidate{cand},
		UsageMetadata: usage,
		ModelVersion:  g.model,
		ResponseID:    g.id,
	}
}

// generateContent serves :generateContent and :streamGenerateContent.
func (s *server) generateContent(w http.ResponseWriter, r *http.Request, c *call, model string, mode streamMode) {
	var req geminiRequest
	if !c.decode(w, &req) {
		return
	}
	if req.Contents == nil {
		c.badRequest(w, "* GenerateContentRequest.contents: contents is not specified")
		return
	}
	g := geminiReply{
		model:  model,
		id:     newID(""),
		prompt: req.promptTokens(),
		rep:    newReply(c.opts.chunks, req.maxOutput()),
	}
	switch mode {
	case streamSSE:
		streamGeminiSSE(newStreamer(w, r, contentTypeSSE, c.opts), g)
	case streamJSONArray:
		streamGeminiArray(newStreamer(w, r, contentTypeJSONArray, c.opts), g)
	default:
		writeJSON(w, http.StatusOK, g.chunk(g.rep.text, true))
	}
}

// streamGeminiSSE sends one "data: {...}\r\n\r\n" event per piece.
func streamGeminiSSE(st *streamer, g geminiReply) {
	for i, piece := range g.rep.pieces {
		if i > 0 {
			st.pause()
		}
		st.data(g.chunk(piece, i == len(g.rep.pieces)-1), "\r\n\r\n")
		if st.failed() {
			return
		}
	}
}

// streamGeminiArray sends the pieces as one JSON array, element by element.
func streamGeminiArray(st *streamer, g geminiReply) {
	for i, piece := range g.rep.pieces {
		prefix := "["
		if i > 0 {
			st.pause()
			prefix = ",\r\n"
		}
		st.frame(prefix, g.chunk(piece, i == len(g.rep.pieces)-1), "")
		if st.failed() {
			return
		}
	}
	st.raw([]byte("]"))
}

// countTokensRequest is a CountTokensRequest: contents directly, or a full
// generateContentRequest.
type countTokensRequest struct {
	geminiRequest
	GenerateContentRequest      *geminiRequest `json:"generateContentRequest"`
	GenerateContentRequestSnake *geminiRequest `json:"generate_content_request"`
}

// countGeminiTokens serves :countTokens with the same count generateContent reports.
func countGeminiTokens(w http.ResponseWriter, r *http.Request, c *call) {
	var req countTokensRequest
	if !c.decode(w, &req) {
		return
	}
	inner := &req.geminiRequest
	for _, g := range []*geminiRequest{req.GenerateContentRequest, req.GenerateContentRequestSnake} {
		if g != nil {
			inner = g
		}
	}
	n := inner.promptTokens()
	writeJSON(w, http.StatusOK, map[string]any{
		"totalTokens":         n,
		"promptTokensDetails": []modalityCount{{Modality: "TEXT", TokenCount: n}},
	})
}

// embedRequest is an EmbedContentRequest.
type embedRequest struct {
	Content                   any `json:"content"`
	OutputDimensionality      int `json:"outputDimensionality"`
	OutputDimensionalitySnake int `json:"output_dimensionality"`
}

// vector embeds the request's content for model.
func (e *embedRequest) vector(model string) map[string][]float32 {
	dims := dimensionsOr(max(e.OutputDimensionality, e.OutputDimensionalitySnake), geminiEmbeddingDims(model))
	return map[string][]float32{"values": embedVector(geminiText(e.Content), dims)}
}

// geminiEmbeddingDims is the native vector size of an embedding model.
func geminiEmbeddingDims(model string) int {
	if strings.HasPrefix(model, "gemini-embedding") {
		return 3072
	}
	return 768
}

// geminiText concatenates the text parts of a Content.
func geminiText(content any) string {
	var b strings.Builder
	walkText(content, func(s string) { b.WriteString(s) })
	return b.String()
}

// embedContent serves :embedContent.
func embedContent(w http.ResponseWriter, r *http.Request, c *call, model string) {
	var req embedRequest
	if !c.decode(w, &req) {
		return
	}
	if req.Content == nil {
		c.badRequest(w, "* EmbedContentRequest.content: content is not specified")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"embedding": req.vector(model)})
}

// batchEmbedContents serves :batchEmbedContents (used by the genai SDK's EmbedContent).
func batchEmbedContents(w http.ResponseWriter, r *http.Request, c *call, model string) {
	var req struct {
		Requests []embedRequest `json:"requests"`
	}
	if !c.decode(w, &req) {
		return
	}
	if len(req.Requests) == 0 {
		c.badRequest(w, "* BatchEmbedContentsRequest.requests: requests is not specified")
		return
	}
	out := make([]map[string][]float32, len(req.Requests))
	for i := range req.Requests {
		out[i] = req.Requests[i].vector(model)
	}
	writeJSON(w, http.StatusOK, map[string]any{"embeddings": out})
}

// geminiModelInfo is one entry of GET /models.
type geminiModelInfo struct {
	Name                       string   `json:"name"`
	Version                    string   `json:"version"`
	DisplayName                string   `json:"displayName"`
	Description                string   `json:"description"`
	InputTokenLimit            int      `json:"inputTokenLimit"`
	OutputTokenLimit           int      `json:"outputTokenLimit"`
	SupportedGenerationMethods []string `json:"supportedGenerationMethods"`
}

// geminiModels serves GET /models with a fixed catalogue.
func geminiModels(w http.ResponseWriter, _ *http.Request, _ *call) {
	ids := []string{"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash", "gemini-embedding-001", "text-embedding-004"}
	models := make([]geminiModelInfo, len(ids))
	for i, id := range ids {
		models[i] = newGeminiModel(id)
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

// geminiModel serves GET /models/{model}; every model exists in the fake.
func geminiModel(w http.ResponseWriter, r *http.Request, _ *call) {
	writeJSON(w, http.StatusOK, newGeminiModel(r.PathValue("model")))
}

// newGeminiModel describes model id.
func newGeminiModel(id string) geminiModelInfo {
	methods := []string{"generateContent", "countTokens"}
	if strings.Contains(id, "embedding") {
		methods = []string{"embedContent", "batchEmbedContents"}
	}
	return geminiModelInfo{
		Name:                       "models/" + id,
		Version:                    "001",
		DisplayName:                id,
		Description:                "Fake " + id + " served by fake-provider",
		InputTokenLimit:            1048576,
		OutputTokenLimit:           65536,
		SupportedGenerationMethods: methods,
	}
}
